"""Shared fixtures: an isolated HISTOBENCH_HOME per test, the CLI, real sample data."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def hb_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path_factory.mktemp("hbhome")
    monkeypatch.setenv("HISTOBENCH_HOME", str(home))
    monkeypatch.setenv("HISTOBENCH_QUIET", "1")
    return home


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared sample data not found at {SHARED_DATA}")
    return SHARED_DATA


CliResult = tuple[int, str, str]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Callable[..., CliResult]:
    """Run ``bench`` in-process; returns (exit code, stdout, stderr)."""
    from histobench.cli.main import main

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        try:
            code = main([str(a) for a in args])
        except SystemExit as exc:  # argparse exits on usage errors
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return run


def assert_one_line_error(err: str, *needles: str) -> None:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err, err
    assert len(lines) == 1, f"expected a one-line error, got: {err!r}"
    for needle in needles:
        assert needle in lines[0], f"{needle!r} not in {lines[0]!r}"


def write_textured_tiles(
    root: Path, classes: dict[str, int], size: int = 64, seed: int = 0
) -> Path:
    """Small generated tiles whose classes differ in texture frequency (learnable signal)."""
    rng = np.random.default_rng(seed)
    for c, (name, count) in enumerate(classes.items()):
        (root / name).mkdir(parents=True, exist_ok=True)
        yy, xx = np.mgrid[0:size, 0:size]
        for i in range(count):
            phase = rng.uniform(0, 2 * np.pi)
            wave = np.sin((xx + yy * (c % 3)) * (0.15 + 0.25 * c) + phase)
            img = np.stack([180 + 50 * wave, 120 + 40 * wave, 170 + 30 * wave], -1)
            img += rng.normal(0, 8, img.shape)
            Image.fromarray(img.clip(0, 255).astype(np.uint8)).save(
                root / name / f"{name}-{i:03d}.png"
            )
    return root


@pytest.fixture
def tiny_tiles(tmp_path: Path) -> Path:
    return write_textured_tiles(tmp_path / "tiles", {"A": 10, "B": 10, "C": 10})


def small_run_config(
    path: Path, dataset: Path | str, extractor: str = "effnet-lite0", **extra: str
) -> Path:
    """A TOML run config with a small input size so CPU tests stay fast."""
    lines = [
        f'extractor = "{extractor}"',
        'task = "crc-tissue"',
        f'dataset = "{dataset}"',
        "[cv]",
        "repeats = 2",
        "folds = 3",
        "[extractor_options]",
        "input_size = 64",
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


__all__ = ["assert_one_line_error", "write_textured_tiles", "small_run_config", "REPO", "os"]
