"""The extraction engine with a reader that is not a slide: items are .npy images cut into
tiles. It must batch per item in tile order, write one HDF5 file per item, reuse finished
files by key, record bad items and go on, whatever the chunk size or executor."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from histobench.benchmark.engine import EngineSettings, embed_items
from histobench.benchmark.h5io import read_slide_features
from histobench.benchmark.streaming import ItemJob, TileChunk, TilePlan, WorkerCall
from histobench.plugins.specs import Item, Runtime
from tests.datasets.wsi.embed_helpers import ColourMoments

SIDE = 8  # tile side in pixels


def plan_image(path: str) -> TilePlan:
    """Every SIDE×SIDE tile of the image, row by row (raises ValueError on a bad file)."""
    height, width = np.load(path, mmap_mode="r").shape[:2]
    ys, xs = np.mgrid[0 : height - SIDE + 1 : SIDE, 0 : width - SIDE + 1 : SIDE]
    coords = np.stack([xs.ravel(), ys.ravel()], axis=1)
    return TilePlan(coords, attrs={"image_shape": [height, width]}, outcome={"side": SIDE})


def read_tiles(path: str, coords: np.ndarray) -> TileChunk:
    """The tiles at ``coords``; all-black tiles are dropped and counted as flagged."""
    image = np.load(path)
    tiles = np.stack([image[y : y + SIDE, x : x + SIDE] for x, y in coords])
    keep = tiles.reshape(len(tiles), -1).any(axis=1)
    return TileChunk(coords[keep], tiles[keep], flagged=int((~keep).sum()))


@dataclass
class ImageReader:
    failures: tuple[type[BaseException], ...] = (ValueError, OSError)
    flagged_label: str = "black_tiles"

    def plan(self, job: ItemJob) -> WorkerCall:
        return plan_image, (str(job.item.path),)

    def chunk(self, job: ItemJob, plan: TilePlan, start: int, stop: int) -> WorkerCall:
        return read_tiles, (str(job.item.path), plan.coords[start:stop])

    def no_tiles(self, job: ItemJob, plan: TilePlan) -> str:
        return f"{job.item.path}: smaller than one tile"

    def none_kept(self, job: ItemJob, flagged: int) -> str:
        return f"{job.item.path}: all {flagged} tiles black"


def _jobs(paths: list[Path], out: Path, version: str = "v1") -> list[ItemJob]:
    return [
        ItemJob(i, Item(p.stem, p), out / f"{p.stem}.h5", f"{p.stem}-{version}", {"k": version})
        for i, p in enumerate(paths)
    ]


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    arrays = {
        "a": rng.integers(1, 256, (24, 40, 3), dtype=np.uint8),  # 15 tiles
        "b": rng.integers(1, 256, (16, 24, 3), dtype=np.uint8),  # 6 tiles
        "black": np.zeros((16, 16, 3), np.uint8),
        "tiny": np.ones((4, 4, 3), np.uint8),
    }
    arrays["a"][:SIDE, :SIDE] = 0  # one black tile: dropped, counted
    paths = {name: folder / f"{name}.npy" for name in arrays}
    for name, array in arrays.items():
        np.save(paths[name], array)
    (folder / "broken.npy").write_bytes(b"not numpy")
    paths["broken"] = folder / "broken.npy"
    return paths


def _expected_rows(path: Path) -> np.ndarray:
    """Each kept tile embedded on its own: what batching must not change."""
    plan = plan_image(str(path))
    chunk = read_tiles(str(path), plan.coords)
    batch = torch.from_numpy(chunk.tiles.astype(np.float32) / 255.0).permute(0, 3, 1, 2)
    return torch.cat([ColourMoments().embed(batch[i : i + 1]) for i in range(len(batch))]).numpy()


@pytest.mark.parametrize("chunk_tiles", [1, 5, 64])
def test_rows_files_and_batches_do_not_depend_on_chunks(
    images: dict[str, Path], tmp_path: Path, chunk_tiles: int
) -> None:
    extractor = ColourMoments()
    paths = [images["a"], images["b"]]
    settings = EngineSettings(executor="inline", chunk_tiles=chunk_tiles)
    result = embed_items(
        extractor, _jobs(paths, tmp_path), ImageReader(), Runtime(batch_size=4), settings
    )
    assert result.ok == [0, 1] and result.computed == 2
    assert list(result.tile_counts) == [14, 6]  # type: ignore[arg-type]
    # Batches are cut per item from its first kept tile: 14 → 4,4,4,2 and 6 → 4,2.
    assert extractor.batch_sizes == [4, 4, 4, 2, 4, 2]
    for row, path in zip(result.features, paths, strict=True):
        features, coords, attrs = read_slide_features(tmp_path / f"{path.stem}.h5")
        np.testing.assert_allclose(features, _expected_rows(path), rtol=1e-6)
        np.testing.assert_array_equal(row, features.astype(np.float64).mean(0).astype(np.float32))
        assert attrs["k"] == "v1" and attrs["n_tiles"] == len(coords)
    _, coords, attrs = read_slide_features(tmp_path / "a.h5")
    assert attrs["black_tiles"] == 1 and attrs["n_planned_tiles"] == 15
    assert json.loads(attrs["image_shape"]) == [24, 40] and coords[0].tolist() == [8, 0]
    outcome = result.details["per_item"][0]
    assert (outcome["item_id"], outcome["status"], outcome["side"]) == ("a", "computed", SIDE)


def test_finished_items_are_reused_by_key_and_bad_items_recorded(
    images: dict[str, Path], tmp_path: Path
) -> None:
    paths = [images[n] for n in ("broken", "a", "black", "tiny", "b")]
    settings = EngineSettings(executor="inline", chunk_tiles=4)
    first = embed_items(
        ColourMoments(), _jobs(paths, tmp_path), ImageReader(), Runtime(batch_size=4), settings
    )
    assert first.ok == [1, 4] and first.computed == 2
    reasons = {s.item_id: s.reason for s in first.skipped}
    assert reasons.keys() == {"broken", "black", "tiny"}
    assert "all 4 tiles black" in reasons["black"] and "smaller than one tile" in reasons["tiny"]
    assert sorted(p.name for p in tmp_path.glob("*.h5")) == ["a.h5", "b.h5"]

    again_extractor = ColourMoments()
    again = embed_items(
        again_extractor, _jobs(paths, tmp_path), ImageReader(), Runtime(batch_size=4), settings
    )
    assert again.cached == 2 and again.computed == 0 and again_extractor.tiles_embedded == 0
    np.testing.assert_array_equal(again.features, first.features)
    # Another key (e.g. other settings) is never mistaken for a finished file.
    other = embed_items(
        ColourMoments(),
        _jobs(paths[1:2], tmp_path, "v2"),
        ImageReader(),
        Runtime(batch_size=4),
        settings,
    )
    assert other.computed == 1 and other.cached == 0
