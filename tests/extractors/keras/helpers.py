"""Shared by the Keras tests: run `bench extract --out` and read the features back."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np

from tests.extractors.keras.conftest import tile_paths


def extract(cli: Callable, tiles: Path, out: Path, *flags: object) -> np.ndarray:
    """Features of ``tiles`` through ``bench extract --out``, in ``tile_paths`` order."""
    code, _, err = cli("extract", "--dataset", tiles, "--out", out, *flags)
    assert code == 0, err
    with h5py.File(out, "r") as f:
        ids = [i.decode() if isinstance(i, bytes) else str(i) for i in f["item_ids"][()]]
        features = np.asarray(f["features"][()], dtype=np.float32)
    rows = {item: row for item, row in zip(ids, features, strict=True)}
    return np.stack([rows[p.relative_to(tiles).as_posix()] for p in tile_paths(tiles)])


def assert_relative(got: np.ndarray, want: np.ndarray, tolerance: float) -> float:
    """Every feature within ``tolerance`` × the largest feature magnitude; returns the error."""
    error = float(np.abs(got - want).max() / np.abs(want).max())
    assert error <= tolerance, f"relative error {error:.3g} > {tolerance}"
    return error
