"""Model placement for slide runs: device lists and the batched preprocessing."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from histobench.benchmark.devices import preprocess_batch, resolve_devices
from histobench.plugins.errors import ConfigError
from histobench.plugins.specs import Runtime
from tests.datasets.wsi.embed_helpers import ColourMoments


def test_device_lists() -> None:
    extractor = ColourMoments()  # a CPU extractor
    assert resolve_devices(None, extractor) == ["cpu"]
    assert resolve_devices("auto", extractor) == ["cpu"]
    assert resolve_devices("cpu, cpu", extractor) == ["cpu", "cpu"]
    assert resolve_devices(["cuda:0", "cuda:1"], extractor) == ["cuda:0", "cuda:1"]
    with pytest.raises(ConfigError, match="'gpu'"):
        resolve_devices("cpu,gpu", extractor)
    with pytest.raises(ConfigError, match="--devices"):
        resolve_devices(" , ", extractor)


@pytest.fixture(scope="module")
def effnet32():
    from histobench.plugins.manager import get_plugins

    spec = get_plugins().extractors.get("effnet-lite0").spec
    return spec.factory(spec.options_model(input_size=32), Runtime("cpu"))


def test_batched_preprocessing_is_bit_identical(effnet32) -> None:
    rng = np.random.default_rng(0)
    tiles = rng.integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)
    batch = preprocess_batch(effnet32, tiles)
    per_tile = torch.stack([effnet32.preprocess(Image.fromarray(t)) for t in tiles])
    assert torch.equal(batch, per_tile)
    assert batch.is_contiguous(memory_format=torch.channels_last)  # no layout copy needed
    np.testing.assert_array_equal(effnet32.embed(batch).numpy(), effnet32.embed(per_tile).numpy())
    # Tiles of another size go through the extractor's own preprocess (it resizes).
    big = rng.integers(0, 256, (2, 40, 40, 3), dtype=np.uint8)
    resized = torch.stack([effnet32.preprocess(Image.fromarray(t)) for t in big])
    assert torch.equal(preprocess_batch(effnet32, big), resized)


def test_other_extractors_use_their_own_preprocess() -> None:
    tiles = np.random.default_rng(1).integers(0, 256, (3, 8, 8, 3), dtype=np.uint8)
    batch = preprocess_batch(ColourMoments(), tiles)
    expected = torch.from_numpy(tiles.astype(np.float32) / 255.0).permute(0, 3, 1, 2)
    torch.testing.assert_close(batch, expected)
