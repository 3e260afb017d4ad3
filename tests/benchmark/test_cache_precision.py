"""Precision and device class are part of every feature-cache key, and runs record them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from histobench.benchmark.cache import FeatureCache
from histobench.benchmark.extraction import extract_tiles
from histobench.datasets.tile_folder import TileFolderOptions, load_tile_folder
from histobench.plugins.specs import Extractor, Runtime
from histobench.plugins.torch import Preprocessing


class PrecisionExtractor(Extractor):
    """Same architecture and weights in every instance; only the arithmetic differs."""

    name = "same-weights"
    feature_dim = 3

    def __init__(self, precision: str, device: str = "cpu") -> None:
        self._precision, self._device = precision, device
        self.calls = 0
        self.pre = Preprocessing(size=16, mean=(0, 0, 0), std=(1, 1, 1))

    def identity(self):
        return {"extractor": "same-weights", "weights_digest": "w1"}

    @property
    def precision(self) -> str:
        return self._precision

    @property
    def device(self) -> str:
        return self._device

    def preprocess(self, image):
        return self.pre(image)

    def embed(self, batch: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        dtype = torch.bfloat16 if self._precision.startswith("bfloat16") else torch.float32
        return batch.to(dtype).mean(dim=(2, 3)).float()


def test_bf16_and_fp32_features_never_share_cache_entries(tmp_path: Path, tiny_tiles: Path) -> None:
    dataset = load_tile_folder(str(tiny_tiles), TileFolderOptions())
    runtime = Runtime("cpu")
    fp32 = PrecisionExtractor("float32")
    bf16 = PrecisionExtractor("bfloat16-autocast")
    assert fp32.cache_key() != bf16.cache_key()  # the slide engine's HDF5 key
    caches = {}
    for extractor in (bf16, fp32):
        caches[extractor.precision] = FeatureCache(
            tmp_path, extractor.feature_identity(), "code-v1"
        )
        result = extract_tiles(extractor, dataset.items, caches[extractor.precision], runtime)
        # The fp32 run follows a complete bf16 extraction and still computes every tile.
        assert result.computed == len(dataset.items) and result.cached == 0
    assert caches["float32"].dir != caches["bfloat16-autocast"].dir
    # Device class alone also separates entries (same precision label, other hardware).
    on_gpu = PrecisionExtractor("bfloat16-autocast", device="cuda:1")
    assert on_gpu.cache_key() != bf16.cache_key()
    # cuda:0 and cuda:1 are one device class: their features are interchangeable.
    assert PrecisionExtractor("bfloat16-autocast", "cuda:0").cache_key() == on_gpu.cache_key()
    again = extract_tiles(PrecisionExtractor("float32"), dataset.items, caches["float32"], runtime)
    assert again.cached == len(dataset.items) and again.computed == 0
    assert not np.array_equal(again.features, np.zeros_like(again.features))
