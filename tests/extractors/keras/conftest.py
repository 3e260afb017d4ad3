"""Fixtures for the Keras tests: a random Keras Xception and plain-Keras reference features,
made once per session in a spawned process that never imports torch."""

from __future__ import annotations

import importlib.util
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SHARED_DATA, write_textured_tiles

# CI installs the keras extra: there these tests run (and fail without TensorFlow), never skip.
HAS_TENSORFLOW = importlib.util.find_spec("tensorflow") is not None or bool(os.environ.get("CI"))
requires_tensorflow = pytest.mark.skipif(
    not HAS_TENSORFLOW, reason='TensorFlow is not installed (pip install "histobench[keras]")'
)


def in_keras_process(fn_name: str, *args: Any) -> Any:
    """Run ``keras_side.<fn_name>(*args)`` in a fresh spawned process (TensorFlow without
    torch: the test process has torch loaded)."""
    from tests.extractors.keras import keras_side

    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(getattr(keras_side, fn_name), *args).result()


@pytest.fixture(scope="session")
def tile_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real NCT-CRC tiles (224 px, one per class); generated 224 px tiles without them."""
    sample = SHARED_DATA / "crc-sample"
    if sample.is_dir():
        return sample
    return write_textured_tiles(tmp_path_factory.mktemp("tiles224"), {"A": 2, "B": 2}, size=224)


def tile_paths(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.suffix in {".tif", ".png"})


@pytest.fixture(scope="session")
def xception_files(tmp_path_factory: pytest.TempPathFactory, tile_folder: Path) -> dict[str, Any]:
    if not HAS_TENSORFLOW:
        pytest.skip('TensorFlow is not installed (pip install "histobench[keras]")')
    out = tmp_path_factory.mktemp("keras-xception")
    files = in_keras_process(
        "make_xception_fixtures", str(out), [str(p) for p in tile_paths(tile_folder)]
    )
    return {k: v if k == "pool_layer" else Path(v) for k, v in files.items()}


@pytest.fixture(scope="session")
def small_model_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if not HAS_TENSORFLOW:
        pytest.skip('TensorFlow is not installed (pip install "histobench[keras]")')
    out = tmp_path_factory.mktemp("keras-small")
    files = in_keras_process("make_small_models", str(out))
    return {k: Path(v) for k, v in files.items()}
