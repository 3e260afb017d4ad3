"""The plugin mechanism: built-ins via entry points, third-party packages, duplicates, tracing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from histobench.plugins import hookimpl
from histobench.plugins.errors import PluginError
from histobench.plugins.manager import Plugins, make_plugin_manager
from histobench.plugins.specs import ExtractorSpec
from tests.conftest import assert_one_line_error


def test_builtins_are_registered_through_entry_points(cli) -> None:
    code, out, _ = cli("list", "extractors", "--json")
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)}
    assert {"effnet-lite0", "imgnet", "random-init", "timm:<model-name>"} <= set(rows)
    assert rows["effnet-lite0"]["feature_dim"] == 1280
    assert rows["imgnet"]["feature_dim"] == 2048
    # Provided by the histobench distribution through its own entry point, like any plugin.
    assert rows["effnet-lite0"]["plugin"] == "builtin-extractors"
    assert rows["effnet-lite0"]["distribution"].startswith("histobench ")
    code, out, _ = cli("list", "tasks", "--json")
    assert "crc-tissue" in {r["name"] for r in json.loads(out)}
    code, out, _ = cli("plugins", "--json")
    by_plugin = {r["plugin"]: r for r in json.loads(out)}
    assert by_plugin["builtin-tasks"]["tasks"] == ["crc-tissue", "luad-expression", "luad-mutation"]


class _Dupe:
    @hookimpl
    def histobench_extractors(self) -> list[ExtractorSpec]:
        return [ExtractorSpec(name="effnet-lite0", description="x", factory=lambda o, r: None)]  # type: ignore[arg-type,return-value]


def test_duplicate_names_are_refused_naming_both_providers() -> None:
    pm = make_plugin_manager()
    pm.register(_Dupe(), name="my-dupe-plugin")
    with pytest.raises(PluginError) as err:
        Plugins(pm)
    message = str(err.value)
    assert "effnet-lite0" in message
    assert "builtin-extractors" in message and "my-dupe-plugin" in message


def test_unknown_names_give_one_line_errors(cli, tiny_tiles: Path) -> None:
    code, _, err = cli(
        "run", "--extractor", "nope", "--task", "crc-tissue", "--dataset", tiny_tiles
    )
    assert code == 2
    assert_one_line_error(err, "unknown extractor 'nope'", "effnet-lite0")
    code, _, err = cli(
        "run", "--extractor", "effnet-lite0", "--task", "nope", "--dataset", tiny_tiles
    )
    assert code == 2
    assert_one_line_error(err, "unknown task 'nope'", "crc-tissue")


README = Path(__file__).resolve().parents[2] / "README.md"


def readme_plugin_example() -> tuple[str, str]:
    """The README's plugin example, exactly as a reader copies it: (module, pyproject.toml)."""
    section = README.read_text().split("## Write your own extractor plugin", 1)[1]
    module = section.split("```python\n", 1)[1].split("```", 1)[0]
    pyproject = section.split("```toml\n", 1)[1].split("```", 1)[0]
    return module, pyproject


@pytest.mark.slow
def test_third_party_plugin_package_is_discovered_and_runs(tmp_path: Path) -> None:
    tiny_tiles = _tinted_tiles(tmp_path / "tinted")
    pkg = tmp_path / "src_pkg"
    (pkg / "hb_colour").mkdir(parents=True)
    module, pyproject = readme_plugin_example()
    # The example imports only the public plugin API.
    imports = [line for line in module.splitlines() if "histobench" in line and "import" in line]
    assert imports == [
        line for line in imports if line.startswith("from histobench.plugins import")
    ]
    (pkg / "hb_colour" / "__init__.py").write_text(module)
    (pkg / "pyproject.toml").write_text(pyproject)
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(pkg),
        ],
        check=True,
        capture_output=True,
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    bench = [sys.executable, "-m", "histobench.cli.main"]
    listed = subprocess.run(
        bench + ["list", "extractors", "--json"], env=env, capture_output=True, text=True
    )
    assert listed.returncode == 0, listed.stderr
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    assert rows["colour-stats"]["distribution"] == "hb-colour 0.1.0"
    assert rows["colour-stats"]["plugin"] == "colour"
    run = subprocess.run(
        bench
        + [
            "run",
            "--extractor",
            "colour-stats",
            "--task",
            "crc-tissue",
            "--dataset",
            str(tiny_tiles),
            "--repeats",
            "2",
            "--folds",
            "3",
            "--json",
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    record = json.loads(run.stdout)
    assert record["extractor"] == "colour-stats"
    assert record["config"]["resolved"]["extractor_options"] == {"bins": 4}
    assert (
        len(record["scores"]) == 2 and record["mean"] > 0.9
    )  # colour classes are separable by colour statistics
    # A plugin's options are validated by its own model: a typo names the field.
    bad = subprocess.run(
        bench
        + [
            "run",
            "--extractor",
            "colour-stats",
            "--task",
            "crc-tissue",
            "--dataset",
            str(tiny_tiles),
            "--config",
            str(_cfg(tmp_path)),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2
    assert_one_line_error(bad.stderr, "extractor_options.binz", "unknown key")


def _tinted_tiles(root: Path) -> Path:
    """Classes that differ in colour, which a colour-statistics extractor can separate."""
    rng = np.random.default_rng(0)
    for name, base in {"A": (200, 120, 170), "B": (150, 90, 190), "C": (235, 200, 215)}.items():
        (root / name).mkdir(parents=True)
        for i in range(9):
            img = np.asarray(base, np.float32) + rng.normal(0, 12, (48, 48, 3))
            Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(root / name / f"{name}-{i}.png")
    return root


def _cfg(tmp_path: Path) -> Path:
    path = tmp_path / "bad.toml"
    path.write_text(
        'extractor = "colour-stats"\ntask = "crc-tissue"\n[extractor_options]\nbinz = 3\n'
    )
    return path


def test_hook_tracing_env_var(tmp_path: Path) -> None:
    env = {**os.environ, "HISTOBENCH_TRACE_HOOKS": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "histobench.cli.main", "list", "tasks", "--json"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0
    assert "histobench_tasks" in out.stderr
