from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from histobench.benchmark.h5io import is_complete, read_slide_features, write_slide_features
from histobench.plugins.errors import DataError


def _data(n: int = 7, d: int = 5) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, d)).astype(np.float32), rng.integers(0, 10_000, (n, 2))


@pytest.mark.parametrize("dtype", ["float16", "float32"])
def test_round_trip(tmp_path: Path, dtype: str) -> None:
    features, coords = _data()
    attrs = {"extractor": "ftx", "tile_px": 224, "target_mpp": 0.25, "config": {"a": [1, 2]}}
    path = tmp_path / "s.h5"
    write_slide_features(path, features, coords, attrs, dtype=dtype)  # type: ignore[arg-type]
    got_features, got_coords, got_attrs = read_slide_features(path)
    assert got_features.dtype == np.dtype(dtype)
    tolerance = 1e-3 if dtype == "float16" else 0
    np.testing.assert_allclose(got_features, features, rtol=tolerance, atol=tolerance)
    if dtype == "float16":  # really stored at half precision, not just labelled so
        assert not np.array_equal(got_features.astype(np.float32), features)
    np.testing.assert_array_equal(got_coords, coords)
    assert got_attrs["extractor"] == "ftx" and got_attrs["tile_px"] == 224
    assert got_attrs["target_mpp"] == 0.25
    assert got_attrs["config"] == '{"a": [1, 2]}'  # nested values travel as JSON text


def test_reads_clam_layout(tmp_path: Path) -> None:
    features, coords = _data()
    path = tmp_path / "clam.h5"
    with h5py.File(path, "w") as h5:  # CLAM's extract_features_fp writes features as 1×N×D
        h5.create_dataset("features", data=features[None])
        h5.create_dataset("coords", data=coords.astype(np.int32))
    got_features, got_coords, attrs = read_slide_features(path)
    assert got_features.shape == (7, 5) and got_coords.dtype == np.int64
    np.testing.assert_array_equal(got_features, features)
    np.testing.assert_array_equal(got_coords, coords)
    assert attrs == {}


def test_mismatched_coords_is_data_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.h5"
    with h5py.File(path, "w") as h5:
        h5.create_dataset("features", data=np.zeros((4, 3)))
        h5.create_dataset("coords", data=np.zeros((5, 2)))
    with pytest.raises(DataError, match="bad.h5.*coords"):
        read_slide_features(path)


def test_missing_features_dataset(tmp_path: Path) -> None:
    path = tmp_path / "nofeat.h5"
    with h5py.File(path, "w") as h5:
        h5.create_dataset("coords", data=np.zeros((5, 2)))
    with pytest.raises(DataError, match="nofeat.h5.*'features'"):
        read_slide_features(path)


def test_truncated_file_is_data_error(tmp_path: Path) -> None:
    features, coords = _data(2000, 64)
    path = write_slide_features(tmp_path / "full.h5", features, coords, {"k": 1})
    cut = tmp_path / "cut.h5"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataError, match="cut.h5"):
        read_slide_features(cut)
    assert not is_complete(cut)


def test_interrupted_write_leaves_old_file_and_no_partial(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    features, coords = _data()
    path = write_slide_features(tmp_path / "s.h5", features, coords, {"version": 1})
    before = path.read_bytes()
    real_create = h5py.Group.create_dataset

    def interrupted(self: h5py.Group, name: str, *args: object, **kwargs: object) -> object:
        if name == "coords":  # features are already on disk when the "crash" happens
            raise KeyboardInterrupt
        return real_create(self, name, *args, **kwargs)

    monkeypatch.setattr(h5py.Group, "create_dataset", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_slide_features(path, features * 2, coords, {"version": 2})
    with pytest.raises(KeyboardInterrupt):
        write_slide_features(tmp_path / "new.h5", features, coords, {})
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.h5"]
    assert read_slide_features(path)[2] == {"version": 1}


def test_is_complete_checks_attrs(tmp_path: Path) -> None:
    features, coords = _data()
    attrs = {"extractor": "ftx", "cache_key": "abc", "target_mpp": 0.25, "stain": {"on": True}}
    path = write_slide_features(tmp_path / "s.h5", features, coords, attrs)
    assert is_complete(path, attrs)
    assert is_complete(path, {"extractor": "ftx"})
    assert not is_complete(path, {"extractor": "imgnet"})
    assert not is_complete(path, {"stain": {"on": False}})
    assert not is_complete(path, {"missing": 1})
    assert not is_complete(tmp_path / "absent.h5", {})


def test_rejects_bad_shapes(tmp_path: Path) -> None:
    features, coords = _data()
    with pytest.raises(ValueError, match="coords"):
        write_slide_features(tmp_path / "x.h5", features, coords[:3], {})
    bad_dtype: Any = "float64"  # outside the FeatureDtype literal on purpose
    with pytest.raises(ValueError, match="dtype"):
        write_slide_features(tmp_path / "x.h5", features, coords, dtype=bad_dtype)
    assert not (tmp_path / "x.h5").exists()


def test_stale_temps_of_dead_writers_are_removed(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from histobench.benchmark.h5io import remove_stale_temps

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead_pid = int(dead.stdout)  # exited: its temporaries are leftovers
    features, coords = _data()
    write_slide_features(tmp_path / "done.h5", features, coords)
    stale = tmp_path / f".s1.h5.{dead_pid}.ab_c12.tmp"
    live = tmp_path / f".s2.h5.{os.getpid()}.xyz789.tmp"  # a live writer: kept
    other = [tmp_path / "notes.tmp", tmp_path / ".s3.h5.tmp", tmp_path / f".s4.h5.{dead_pid}"]
    for path in [stale, live, *other]:
        path.write_bytes(b"partial")
    assert remove_stale_temps(tmp_path) == [stale]
    assert not stale.exists() and live.exists() and all(p.exists() for p in other)
    assert (tmp_path / "done.h5").exists()
    assert remove_stale_temps(tmp_path / "absent") == []


def test_temp_name_carries_the_writer_pid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    import histobench.benchmark.h5io as h5io

    seen: list[str] = []
    real_file = h5py.File

    def spy(name: Any, mode: str = "r", **kw: Any) -> Any:
        seen.append(Path(name).name)
        return real_file(name, mode, **kw)

    monkeypatch.setattr(h5io.h5py, "File", spy)
    features, coords = _data()
    write_slide_features(tmp_path / "s.h5", features, coords)
    assert len(seen) == 1 and seen[0].startswith(f".s.h5.{os.getpid()}.")
    assert h5io._TEMP_NAME.match(seen[0])
    assert [p.name for p in tmp_path.iterdir()] == ["s.h5"]
