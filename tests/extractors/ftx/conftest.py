"""Shared fixtures: a private HISTOBENCH_HOME, tiny demo tile folders, a fast recipe."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[3]
SHARED_DATA = REPO / ".." / "shared" / "data"

# Keep CPU tests fast and reproducible on a shared 2-core machine.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def session_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("histobench-home")


@pytest.fixture(autouse=True)
def _home(session_home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HISTOBENCH_HOME", str(session_home))
    monkeypatch.setenv("HISTOBENCH_QUIET", "1")
    return session_home


@pytest.fixture(scope="session")
def train_tiles(session_home: Path) -> Path:
    """Demo *train* tiles, 4 per class × 9 classes (224 px; the recipe resizes to 64)."""
    from histobench.datasets.demo import demo_tiles

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HISTOBENCH_HOME", str(session_home))
        return demo_tiles("train", tiles_per_class=4)


@pytest.fixture()
def tiles_copy(train_tiles: Path, tmp_path: Path) -> Path:
    """A private, editable copy of the tiny tile folder."""
    dest = tmp_path / "tiles"
    shutil.copytree(train_tiles, dest, ignore=shutil.ignore_patterns("demo.json"))
    return dest
