"""Slide → normalised tiles, in one process or shared among worker processes.

Workers receive a path, coordinates and a ``TileGeometry`` (all picklable) and open the
slide themselves: OpenSlide handles cannot be pickled, and one handle per process also
avoids contention on OpenSlide's per-handle tile cache lock.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from histobench.datasets.wsi.reader import Slide, open_slide
from histobench.datasets.wsi.stain import StainConfig, StainNormalizer
from histobench.datasets.wsi.tiling import TileGeometry, iter_tiles


@dataclass
class TileBatch:
    """Tiles that survived stain normalisation, with where they came from."""

    indices: np.ndarray  # (M,) positions in the coordinate list given
    coords: np.ndarray  # (M, 2) level-0 x, y
    # (M, tile_px, tile_px, 3) uint8: one buffer, so it crosses process boundaries in one
    # copy and feeds an extractor's batches directly.
    tiles: np.ndarray
    stain_failures: list[tuple[int, str]] = field(default_factory=list)  # (index, reason)


def normalise_chunk(
    tiles: np.ndarray,
    normalizer: StainNormalizer | None,
    failures: list[tuple[int, str]] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(kept indices, tiles) after stain normalisation of (N,H,W,3) uint8 tiles at once.

    Failed stain estimates are appended to ``failures`` as (index, reason), also when the
    policy keeps the tile, so a run can report how many tiles were not normalised.
    """
    if normalizer is None:
        return np.arange(len(tiles), dtype=np.int64), tiles
    out, reasons = normalizer.normalize_array(tiles)
    keep = np.ones(len(out), dtype=bool)
    for index, reason in enumerate(reasons):
        if reason is None:
            continue
        if failures is not None:
            failures.append((index, reason))
        if normalizer.config.on_failure == "skip":
            keep[index] = False
    kept = np.nonzero(keep)[0].astype(np.int64)
    return kept, out if keep.all() else out[kept]


def read_tile_array(slide: Slide, coords: np.ndarray, geometry: TileGeometry) -> np.ndarray:
    """(N, tile_px, tile_px, 3) uint8 tiles in the order of ``coords``, in one buffer."""
    side = geometry.tile_px
    tiles = np.empty((len(coords), side, side, 3), dtype=np.uint8)
    for i, tile in enumerate(iter_tiles(slide, coords, geometry)):
        tiles[i] = np.asarray(tile)
    return tiles


def iter_normalised_tiles(
    slide: Slide,
    coords: np.ndarray,
    geometry: TileGeometry,
    normalizer: StainNormalizer | None,
    failures: list[tuple[int, str]] | None = None,
) -> Iterator[tuple[int, Image.Image]]:
    """(index, RGB tile) for each coordinate kept under the stain-failure policy."""
    coords = np.asarray(coords).reshape(-1, 2)
    kept, tiles = normalise_chunk(read_tile_array(slide, coords, geometry), normalizer, failures)
    for index, tile in zip(kept.tolist(), tiles, strict=True):
        yield index, Image.fromarray(tile, mode="RGB")


def read_normalised_tiles(
    path: str | Path,
    coords: np.ndarray,
    geometry: TileGeometry,
    stain: StainConfig | None = None,
    mpp_override: float | None = None,
) -> TileBatch:
    """Worker entry point: open the slide by path, read and normalise ``coords``."""
    coords = np.asarray(coords).reshape(-1, 2)
    normalizer = StainNormalizer(stain) if stain is not None and stain.enabled else None
    failures: list[tuple[int, str]] = []
    with open_slide(path, mpp_override=mpp_override) as slide:
        tiles = read_tile_array(slide, coords, geometry)
    kept, tiles = normalise_chunk(tiles, normalizer, failures)
    return TileBatch(kept, coords[kept], tiles, failures)


def read_normalised_tiles_parallel(
    executor: Executor,
    n_shards: int,
    path: str | Path,
    coords: np.ndarray,
    geometry: TileGeometry,
    stain: StainConfig | None = None,
    mpp_override: float | None = None,
) -> TileBatch:
    """Split ``coords`` into contiguous shards (neighbouring tiles share cached slide tiles),
    read them on ``executor`` and merge the results in coordinate order."""
    coords = np.asarray(coords).reshape(-1, 2)
    bounds = np.linspace(0, len(coords), max(1, n_shards) + 1).astype(int)
    futures = [
        (
            start,
            executor.submit(
                read_normalised_tiles, path, coords[start:stop], geometry, stain, mpp_override
            ),
        )
        for start, stop in zip(bounds[:-1], bounds[1:], strict=True)
        if stop > start
    ]
    indices: list[np.ndarray] = []
    tiles: list[np.ndarray] = []
    failures: list[tuple[int, str]] = []
    for start, future in futures:
        batch = future.result()
        indices.append(batch.indices + start)
        tiles.append(batch.tiles)
        failures.extend((index + start, reason) for index, reason in batch.stain_failures)
    if not indices:
        empty = np.zeros((0, geometry.tile_px, geometry.tile_px, 3), dtype=np.uint8)
        return TileBatch(np.zeros(0, dtype=np.int64), coords[:0], empty, failures)
    kept = np.concatenate(indices)
    return TileBatch(kept, coords[kept], np.concatenate(tiles), failures)
