"""The tile engine's batch size: the user's ``--batch-size``, else the extractor's preferred one
(a foundation model's probed GPU batch), else the device default; the extractor is not asked
when the user chose."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from histobench.benchmark.cache import FeatureCache
from histobench.benchmark.extraction import default_batch_size, extract_tiles
from histobench.datasets.tile_folder import TileFolderOptions, load_tile_folder
from histobench.plugins.specs import Extractor, Runtime
from histobench.plugins.torch import Preprocessing


class BatchRecorder(Extractor):
    """Mean colour per channel; records the size of every batch it is given."""

    name = "batch-recorder"
    feature_dim = 3

    def __init__(self, preferred: int | None) -> None:
        self.preferred = preferred
        self.asked = 0
        self.sizes: list[int] = []
        self.pre = Preprocessing(size=16, mean=(0, 0, 0), std=(1, 1, 1))

    @property
    def preferred_batch_size(self) -> int | None:
        self.asked += 1
        return self.preferred

    def identity(self):  # type: ignore[no-untyped-def]
        return {"extractor": "batch-recorder"}

    def preprocess(self, image):  # type: ignore[no-untyped-def]
        return self.pre(image)

    def embed(self, batch: torch.Tensor) -> torch.Tensor:
        self.sizes.append(len(batch))
        return batch.mean(dim=(2, 3))


def _run(tmp_path: Path, tiles: Path, extractor: BatchRecorder, runtime: Runtime) -> list[int]:
    dataset = load_tile_folder(str(tiles), TileFolderOptions())
    assert len(dataset.items) == 30
    cache = FeatureCache(tmp_path / "cache", {"extractor": extractor.name}, "v1")
    result = extract_tiles(extractor, dataset.items, cache, runtime)
    assert result.computed == 30
    return extractor.sizes


def test_preferred_batch_size_is_used_when_none_is_given(tmp_path: Path, tiny_tiles: Path) -> None:
    sizes = _run(tmp_path, tiny_tiles, BatchRecorder(7), Runtime("cpu", 0, num_workers=0))
    assert sizes == [7, 7, 7, 7, 2]  # 30 tiles; the CPU default (4) would give [4] * 7 + [2]


@pytest.mark.parametrize("preferred", [7, None])
def test_given_batch_size_wins_and_the_extractor_is_not_asked(
    preferred: int | None, tmp_path: Path, tiny_tiles: Path
) -> None:
    extractor = BatchRecorder(preferred)
    sizes = _run(tmp_path, tiny_tiles, extractor, Runtime("cpu", 0, batch_size=12, num_workers=0))
    assert sizes == [12, 12, 6] and extractor.asked == 0  # a GPU probe is not run for nothing


def test_device_default_without_a_preference(tmp_path: Path, tiny_tiles: Path) -> None:
    sizes = _run(tmp_path, tiny_tiles, BatchRecorder(None), Runtime("cpu", 0, num_workers=0))
    default = default_batch_size("cpu")
    assert sizes == [default] * (30 // default) + ([30 % default] if 30 % default else [])


def test_slide_engine_uses_the_same_rule() -> None:
    """The slide engine sizes its batches by the same rule (user, extractor, device default)."""
    from histobench.benchmark.engine import EngineSettings, _device_plan

    settings = EngineSettings(devices="cpu", workers=0)
    preferred = BatchRecorder(7)
    assert _device_plan(preferred, Runtime("cpu", 0), settings).batch_size == 7
    assert _device_plan(BatchRecorder(None), Runtime("cpu", 0), settings).batch_size == (
        default_batch_size("cpu")
    )
    asked = preferred.asked
    assert _device_plan(preferred, Runtime("cpu", 0, batch_size=12), settings).batch_size == 12
    assert preferred.asked == asked  # not asked when the user chose
