"""Real stored runs for the leaderboard tests, made once per session through ``bench run``.

Two extractors on the generated demo tiles (6 per class, 64 px input) with 3 repeats × 3 folds:
a real run store with real plans and predictions in a few seconds. Each test gets its own copy
of the store (and of the feature cache, so extra runs it makes are quick), so no test sees
another's runs.
"""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Callable
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path
from typing import Any

import pytest

SMALL = "[dataset_options]\ntiles_per_class = 6\n[extractor_options]\ninput_size = 64\n"
EXTRACTORS = ("effnet-lite0", "random-init")


def bench_main() -> Callable[[list[str]], int]:
    """``bench``'s own main."""
    from histobench.cli.main import main

    return main


def run_bench_json(home: Path, *args: str) -> dict[str, Any]:
    """``bench run ... --json`` in-process with HISTOBENCH_HOME = home; returns the record."""
    from histobench.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HISTOBENCH_HOME", str(home))
        mp.setenv("HISTOBENCH_QUIET", "1")
        with redirect_stdout(out), redirect_stderr(err):
            code = main(["run", *args, "--json"])
    assert code == 0, err.getvalue()
    return json.loads(out.getvalue())


@pytest.fixture(scope="session")
def demo_runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict[str, Any]]]:
    home = tmp_path_factory.mktemp("demo-home")
    config = home.parent / "small.toml"
    config.write_text(SMALL)
    records = {
        e: run_bench_json(
            home,
            "--extractor",
            e,
            "--task",
            "crc-tissue",
            "--dataset",
            "demo",
            "--config",
            str(config),
            "--repeats",
            "3",
            "--folds",
            "3",
        )  # fmt: skip
        for e in EXTRACTORS
    }
    return home, records


@pytest.fixture
def demo_home(demo_runs: tuple[Path, dict[str, Any]], hb_home: Path) -> Path:
    """This test's HISTOBENCH_HOME, holding a private copy of the demo runs and cache."""
    src, _ = demo_runs
    for path in src.iterdir():
        if path.is_dir():
            shutil.copytree(path, hb_home / path.name, dirs_exist_ok=True)
        else:
            shutil.copy2(path, hb_home / path.name)
    return hb_home


@pytest.fixture
def demo_records(demo_runs: tuple[Path, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return demo_runs[1]


@pytest.fixture
def small_config(tmp_path: Path) -> Path:
    path = tmp_path / "small.toml"
    path.write_text(SMALL)
    return path


@pytest.fixture
def bench(capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """Run ``bench compare`` / ``bench leaderboard`` in-process: (exit code, stdout, stderr)."""
    main = bench_main()

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return run
