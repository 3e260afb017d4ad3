"""`bench run --layer/--option/--weights` become extractor options (merged into a config file's)."""

from __future__ import annotations

from pathlib import Path

from histobench.cli.main import _config_from_args, build_parser
from tests.conftest import assert_one_line_error


def test_layer_option_and_weights_flags(tmp_path: Path) -> None:
    config = tmp_path / "run.toml"
    config.write_text(
        'extractor = "keras-model"\ntask = "crc-tissue"\n'
        '[extractor_options]\npooling = "avg"\ninput_size = 64\n'
    )
    args = build_parser().parse_args(
        ["run", "--config", str(config), "--weights", "m.h5", "--layer", "avg_pool",
         "--option", "pooling=max", "--option", "preprocess=caffe"]
    )  # fmt: skip
    run_config, _ = _config_from_args(args)
    assert run_config.extractor_options == {
        "pooling": "max",
        "input_size": 64,
        "weights": "m.h5",
        "layer": "avg_pool",
        "preprocess": "caffe",
    }


def test_malformed_option_is_one_line(cli) -> None:
    code, _, err = cli("run", "--extractor", "keras-model", "--task", "crc-tissue", "--option", "x")
    assert code == 2
    assert_one_line_error(err, "--option 'x'", "KEY=VALUE")
