"""Feature cache: checksummed files, corruption detected and recomputed, resumable extraction."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from histobench.benchmark.cache import FeatureCache, decode, encode
from histobench.benchmark.extraction import extract_tiles
from histobench.datasets.tile_folder import TileFolderOptions, load_tile_folder
from histobench.plugins.specs import Extractor, Runtime
from histobench.plugins.torch import Preprocessing


def test_round_trip_and_damage_detection() -> None:
    v = np.arange(10, dtype=np.float32) / 3
    blob = encode(v)
    assert np.array_equal(decode(blob), v)
    assert decode(blob[:-1]) is None  # truncated
    assert decode(blob[: len(blob) // 2]) is None
    flipped = bytearray(blob)
    flipped[20] ^= 0x01
    assert decode(bytes(flipped)) is None  # bit rot in the payload


def test_corrupt_file_is_deleted_and_reported(tmp_path: Path) -> None:
    cache = FeatureCache(tmp_path, {"x": 1}, "v1")
    cache.put("abcd", np.ones(4, np.float32))
    path = cache.path("abcd")
    path.write_bytes(path.read_bytes()[:-3])
    assert cache.get("abcd") is None
    assert cache.corrupt_found == 1 and not path.exists()


def test_key_depends_on_identity_and_code_version(tmp_path: Path) -> None:
    a = FeatureCache(tmp_path, {"weights": "aa"}, "v1")
    assert FeatureCache(tmp_path, {"weights": "aa"}, "v1").key == a.key
    assert FeatureCache(tmp_path, {"weights": "bb"}, "v1").key != a.key
    assert FeatureCache(tmp_path, {"weights": "aa"}, "v2").key != a.key


class CountingExtractor(Extractor):
    """Mean colour per channel; can be told to crash after some batches."""

    name = "counting"
    feature_dim = 3

    def __init__(self, crash_after: int | None = None) -> None:
        self.calls = 0
        self.crash_after = crash_after
        self.pre = Preprocessing(size=32, mean=(0, 0, 0), std=(1, 1, 1))

    def identity(self):
        return {"extractor": "counting"}

    def preprocess(self, image):
        return self.pre(image)

    def embed(self, batch):
        if self.crash_after is not None and self.calls >= self.crash_after:
            raise KeyboardInterrupt("simulated interruption")
        self.calls += 1
        return batch.mean(dim=(2, 3))


def test_interrupted_extraction_resumes_and_matches(tmp_path: Path, tiny_tiles: Path) -> None:
    dataset = load_tile_folder(str(tiny_tiles), TileFolderOptions())
    runtime = Runtime("cpu", 0, batch_size=4, num_workers=0)
    cache = FeatureCache(tmp_path / "c1", {"extractor": "counting"}, "v1")
    with pytest.raises(KeyboardInterrupt):
        extract_tiles(CountingExtractor(crash_after=3), dataset.items, cache, runtime)
    resumed = extract_tiles(CountingExtractor(), dataset.items, cache, runtime)
    assert resumed.cached == 12 and resumed.computed == len(dataset.items) - 12
    fresh = extract_tiles(
        CountingExtractor(), dataset.items, FeatureCache(tmp_path / "c2", {"e": 1}, "v1"), runtime
    )
    assert np.array_equal(resumed.features, fresh.features)
    again = extract_tiles(CountingExtractor(), dataset.items, cache, runtime)
    assert again.computed == 0 and again.cached == len(dataset.items)
    assert torch.allclose(torch.from_numpy(again.features), torch.from_numpy(fresh.features))


def test_features_cached_by_other_code_are_not_reused_and_named(tmp_path: Path) -> None:
    old = FeatureCache(tmp_path, {"extractor": "x", "weights": "w1"}, "0.1.0+aaaa")
    old.put("k1", np.ones(3, dtype=np.float32))
    new = FeatureCache(tmp_path, {"extractor": "x", "weights": "w1"}, "0.1.0+bbbb")
    assert new.superseded == ["0.1.0+aaaa"] and new.get("k1") is None
    other = FeatureCache(tmp_path, {"extractor": "x", "weights": "w2"}, "0.1.0+cccc")
    assert other.superseded == []  # another identity is not an older version of this one
    again = FeatureCache(tmp_path, {"extractor": "x", "weights": "w1"}, "0.1.0+bbbb")
    assert again.superseded == []  # said once, when the new folder is made


def test_feature_code_names_modules_and_fails_loudly_when_one_moves(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from histobench.benchmark import environment

    files = environment.module_files("histobench.plugins.torch")
    assert [f.name for f in files] == ["torch.py"]
    assert len(environment.module_files("histobench.extractors")) > 5
    monkeypatch.setattr(environment, "FEATURE_CODE", ("histobench.no_such_module",))
    environment.feature_code_version.cache_clear()
    try:
        with pytest.raises(RuntimeError, match="no_such_module"):
            environment.feature_code_version()
    finally:
        environment.feature_code_version.cache_clear()
