"""Feature files: per item in the CLAM/TRIDENT layout (``features`` + ``coords``), or one
file for a whole tile data set (``features`` + ``item_ids``, ``write_tile_features``).

Files are written to a temporary name in the same folder and renamed into place, so a crash
or a full disk never leaves a half-written file where a complete one is expected; resuming a
run can then trust any file that exists (``is_complete``). The temporary name carries the
writer's pid (``.<name>.<pid>.<random>.tmp``), so a later run can tell the leftovers of a
killed writer from a live one's file (``remove_stale_temps``).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import h5py
import numpy as np

from histobench.plugins.errors import DataError

FeatureDtype = Literal["float16", "float32"]

# ".<file name>.<pid>.<mkstemp token>.tmp", as written by ``write_slide_features``.
_TEMP_NAME = re.compile(r"^\.(?P<name>.+\.h5)\.(?P<pid>\d+)\.[A-Za-z0-9_]+\.tmp$")


def _attr_value(value: Any) -> Any:
    # HDF5 attributes hold scalars, strings and flat arrays; anything nested goes as JSON so
    # configs (dicts) survive the round trip.
    if value is None:
        return json.dumps(None)
    if isinstance(value, (str, bool, int, float, np.generic)):
        return value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.ndarray):
        return value
    return json.dumps(value, sort_keys=True)


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value


def _check_dtype(dtype: str) -> None:
    if dtype not in ("float16", "float32"):
        raise ValueError(f"dtype must be float16 or float32, got {dtype!r}")


def _write_atomic(
    path: Path, datasets: Mapping[str, np.ndarray], attrs: Mapping[str, Any] | None
) -> Path:
    """Write ``datasets`` and ``attrs`` to a temporary file beside ``path``, then rename it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with h5py.File(tmp, "w") as h5:
            for name, data in datasets.items():
                h5.create_dataset(name, data=data)
            for key, value in (attrs or {}).items():
                h5.attrs[key] = _attr_value(value)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_slide_features(
    path: str | Path,
    features: np.ndarray,
    coords: np.ndarray,
    attrs: Mapping[str, Any] | None = None,
    dtype: FeatureDtype = "float32",
) -> Path:
    """Write ``features`` (N×D) and ``coords`` (N×2, level-0 x, y) atomically to ``path``."""
    features = np.asarray(features)
    coords = np.asarray(coords)
    if features.ndim != 2:
        raise ValueError(f"features must be N×D, got shape {features.shape}")
    if coords.shape != (features.shape[0], 2):
        raise ValueError(f"coords must be {features.shape[0]}×2, got shape {coords.shape}")
    _check_dtype(dtype)
    datasets = {
        "features": features.astype(dtype, copy=False),
        "coords": coords.astype(np.int64, copy=False),
    }
    return _write_atomic(Path(path), datasets, attrs)


def write_tile_features(
    path: str | Path,
    features: np.ndarray,
    item_ids: list[str],
    attrs: Mapping[str, Any] | None = None,
    dtype: FeatureDtype = "float32",
) -> Path:
    """Write a tile data set's ``features`` (N×D) and ``item_ids`` (N UTF-8 strings) atomically."""
    features = np.asarray(features)
    if features.ndim != 2 or features.shape[0] != len(item_ids):
        raise ValueError(f"features must be {len(item_ids)}×D, got shape {features.shape}")
    _check_dtype(dtype)
    datasets = {
        "features": features.astype(dtype, copy=False),
        "item_ids": np.array(item_ids, dtype=h5py.string_dtype("utf-8")),
    }
    return _write_atomic(Path(path), datasets, attrs)


def read_tile_features(path: str | Path) -> tuple[np.ndarray, list[str], dict[str, Any]]:
    """(features N×D, item ids, attrs) of a file written by ``write_tile_features``."""
    path = Path(path)
    try:
        with h5py.File(path, "r") as h5:
            features = np.asarray(h5["features"][()])
            item_ids = [i.decode() for i in h5["item_ids"][()]]
            attrs = {key: _plain(value) for key, value in h5.attrs.items()}
    except (OSError, KeyError, ValueError) as exc:
        raise DataError(f"{path}: not a tile feature file: {exc}") from exc
    return features, item_ids, attrs


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: existence check only
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def remove_stale_temps(folder: str | Path) -> list[Path]:
    """Delete temporary feature files in ``folder`` left by writers that no longer run.

    A killed run leaves its in-progress ``.<slide>.h5.<pid>.<token>.tmp``; the file of a
    writer whose pid is still alive (another run writing into the same folder) is kept.
    Pids are per machine: runs on several hosts must not share an output folder.
    Returns the removed paths.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for path in folder.iterdir():
        match = _TEMP_NAME.match(path.name)
        if match is None or not path.is_file() or _pid_alive(int(match["pid"])):
            continue
        try:
            path.unlink()
        except FileNotFoundError:  # another cleaner got there first
            continue
        removed.append(path)
    return removed


def read_slide_features(path: str | Path) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(features N×D, coords N×2, attrs) from a histobench, CLAM or TRIDENT feature file.

    CLAM stores ``features`` as 1×N×D; the leading axis is dropped. ``coords`` may be absent
    in some exports (then it is an N×2 array of -1).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: feature file not found")
    try:
        with h5py.File(path, "r") as h5:
            if "features" not in h5:
                raise DataError(f"{path}: no 'features' dataset (expected the CLAM/TRIDENT layout)")
            features = np.asarray(h5["features"][()])
            coords = np.asarray(h5["coords"][()]) if "coords" in h5 else None
            attrs = {key: _plain(value) for key, value in h5.attrs.items()}
    except DataError:
        raise
    except (OSError, KeyError, ValueError, RuntimeError) as exc:
        raise DataError(f"{path}: corrupt or truncated HDF5 feature file: {exc}") from exc
    if features.ndim == 3 and features.shape[0] == 1:
        features = features[0]
    if features.ndim != 2:
        raise DataError(f"{path}: 'features' must be N×D or 1×N×D, got shape {features.shape}")
    if coords is None:
        coords = np.full((features.shape[0], 2), -1, dtype=np.int64)
    if coords.ndim == 3 and coords.shape[0] == 1:
        coords = coords[0]
    if coords.shape != (features.shape[0], 2):
        raise DataError(
            f"{path}: 'coords' shape {coords.shape} does not match {features.shape[0]} features"
        )
    return features, coords.astype(np.int64, copy=False), attrs


def is_complete(path: str | Path, expected_attrs: Mapping[str, Any] | None = None) -> bool:
    """Whether ``path`` is a readable feature file made with ``expected_attrs``.

    Used to resume a run slide by slide: a file from another configuration (different
    extractor, tiling or stain settings) counts as missing, never as done.
    """
    try:
        _, _, attrs = read_slide_features(path)
    except DataError:
        return False
    for key, value in (expected_attrs or {}).items():
        if key not in attrs or attrs[key] != _plain(_roundtrip(value)):
            return False
    return True


def _roundtrip(value: Any) -> Any:
    # Compare against what the attribute reads back as, not the Python value written.
    stored = _attr_value(value)
    return stored.tolist() if isinstance(stored, np.ndarray) else stored
