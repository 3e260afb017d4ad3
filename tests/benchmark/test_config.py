"""Run configs: TOML/YAML files, CLI overrides, strict validation, the JSON Schema."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from histobench.benchmark.config import build_run_config
from histobench.plugins.errors import ConfigError
from tests.conftest import assert_one_line_error


def test_flags_override_file_values(tmp_path: Path) -> None:
    cfg = tmp_path / "run.toml"
    cfg.write_text(
        'extractor = "effnet-lite0"\ntask = "crc-tissue"\nseed = 3\n[cv]\nrepeats = 7\nfolds = 4\n'
    )
    config = build_run_config(cfg, {"seed": 11, "extractor": None}, {"repeats": None, "folds": 3})
    assert config.seed == 11 and config.extractor == "effnet-lite0"
    assert config.cv.repeats == 7 and config.cv.folds == 3


def test_defaults_are_the_study_protocol() -> None:
    config = build_run_config(None, {"extractor": "e", "task": "t"}, {})
    assert (config.cv.repeats, config.cv.folds, config.device) == (50, 5, "auto")


def test_yaml_config(tmp_path: Path) -> None:
    cfg = tmp_path / "run.yaml"
    cfg.write_text("extractor: effnet-lite0\ntask: crc-tissue\ncv:\n  repeats: 2\n")
    assert build_run_config(cfg, {}, {}).cv.repeats == 2


def test_misspelt_key_names_file_and_field_path(tmp_path: Path) -> None:
    cfg = tmp_path / "run.toml"
    cfg.write_text('extractor = "effnet-lite0"\ntask = "crc-tissue"\n[cv]\nrepets = 3\n')
    with pytest.raises(ConfigError) as err:
        build_run_config(cfg, {}, {})
    assert str(err.value).startswith(f"{cfg}: cv.repets: unknown key")


def test_wrong_type_names_field(tmp_path: Path) -> None:
    cfg = tmp_path / "run.toml"
    cfg.write_text('extractor = "effnet-lite0"\ntask = "crc-tissue"\n[cv]\nfolds = "five"\n')
    with pytest.raises(ConfigError, match=r"cv\.folds"):
        build_run_config(cfg, {}, {})


def test_cli_config_errors_exit_2_with_one_line(cli, tmp_path: Path) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text('extractor = "effnet-lite0"\ntask = "crc-tissue"\ndevise = "cpu"\n')
    code, _, err = cli("run", "--config", cfg)
    assert code == 2
    assert_one_line_error(err, str(cfg), "devise", "unknown key")
    broken = tmp_path / "broken.toml"
    broken.write_text("extractor = \n")
    code, _, err = cli("run", "--config", broken)
    assert code == 2
    assert_one_line_error(err, str(broken), "not valid TOML")
    code, _, err = cli("run", "--config", tmp_path / "missing.toml")
    assert code == 2
    assert_one_line_error(err, "missing.toml", "not found")


def test_plugin_options_are_validated_by_the_plugin_model(
    cli, tmp_path: Path, tiny_tiles: Path
) -> None:
    cfg = tmp_path / "run.toml"
    cfg.write_text(
        f'extractor = "effnet-lite0"\ntask = "crc-tissue"\ndataset = "{tiny_tiles}"\n'
        "[task_options]\nC = -1\n"
    )
    code, _, err = cli("run", "--config", cfg)
    assert code == 2
    assert_one_line_error(err, "task_options.C", "greater than 0")


def test_schema_is_json_schema_with_plugin_options(cli) -> None:
    code, out, _ = cli("schema")
    assert code == 0
    schema = json.loads(out)
    assert schema["additionalProperties"] is False
    assert {"extractor", "task", "dataset", "cv", "seed", "device"} <= set(schema["properties"])
    assert "C" in schema["x-plugin-options"]["task_options"]["crc-tissue"]["properties"]
