"""Tile a slide at a target resolution: grid, tissue filter, pyramid level choice, reading.

Coordinates are level-0 pixels (x, y) of each tile's top-left corner, as CLAM and TRIDENT
store them. Each tile covers ``tile_px * target_mpp / slide_mpp`` level-0 pixels and is read
from the coarsest pyramid level that is still at least as fine as the target, then resized to
``tile_px``; reading from level 0 and shrinking would cost up to 16× more I/O and decoding.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from histobench.datasets.wsi.mask import (
    MaskConfig,
    TissueMask,
    compute_tissue_mask,
    save_grid_thumbnail,
    save_mask_png,
)
from histobench.datasets.wsi.reader import Slide, open_slide

Resample = Literal["nearest", "bilinear", "bicubic", "lanczos", "box"]
_PIL_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
}


class TilingConfig(BaseModel):
    """How a slide becomes tiles; every field is recorded with the features it produced."""

    model_config = ConfigDict(extra="forbid")

    tile_px: int = Field(default=224, gt=0, description="Side of an output tile in pixels.")
    target_mpp: float = Field(
        default=0.25, gt=0, description="Resolution of output tiles in µm/px."
    )
    min_tissue_fraction: float = Field(
        default=0.25,
        ge=0,
        le=1,
        description="Keep a tile when at least this share of it is tissue.",
    )
    max_tiles: int | None = Field(
        default=None, gt=0, description="Cap on tiles per slide, sampled with `seed`; None = all."
    )
    seed: int = Field(default=0, description="Seed of the tile sample when `max_tiles` applies.")
    mask: MaskConfig = Field(default_factory=MaskConfig)
    mpp_override: float | None = Field(
        default=None, gt=0, description="Slide resolution in µm/px; wins over the file's own."
    )
    resample: Resample = Field(
        default="bicubic", description="PIL filter used to resize a read region to `tile_px`."
    )


@dataclass(frozen=True)
class TileGeometry:
    """How every tile of one slide is read; small and picklable, for worker processes."""

    tile_px: int
    target_mpp: float
    slide_mpp: float
    size_level0: float  # side of a tile in level-0 pixels
    level: int  # pyramid level read from
    level_downsample: float
    read_px: int  # side of the region read at ``level``
    resample: Resample = "bicubic"

    @classmethod
    def for_slide(
        cls, slide: Slide, tile_px: int, target_mpp: float, resample: Resample = "bicubic"
    ) -> TileGeometry:
        size_level0 = tile_px * target_mpp / slide.mpp
        level = slide.best_level(target_mpp / slide.mpp)
        downsample = slide.level_downsamples[level]
        read_px = max(1, round(size_level0 / downsample))
        return cls(
            tile_px=tile_px,
            target_mpp=target_mpp,
            slide_mpp=slide.mpp,
            size_level0=size_level0,
            level=level,
            level_downsample=downsample,
            read_px=read_px,
            resample=resample,
        )


@dataclass
class TileGrid:
    """The tiles chosen on one slide."""

    slide_path: Path
    geometry: TileGeometry
    coords: np.ndarray  # (N, 2) int64, level-0 x, y
    tissue_fractions: np.ndarray  # (N,) float
    grid_shape: tuple[int, int]  # columns, rows of the full grid before filtering
    mask: TissueMask | None = None

    def __len__(self) -> int:
        return len(self.coords)

    def describe(self) -> dict[str, Any]:
        """How the tiles were made, for HDF5 attributes and run records."""
        g = self.geometry
        return {
            "tile_px": g.tile_px,
            "target_mpp": g.target_mpp,
            "slide_mpp": g.slide_mpp,
            "tile_size_level0": g.size_level0,
            "read_level": g.level,
            "read_level_downsample": g.level_downsample,
            "read_px": g.read_px,
            "resample": g.resample,
            "n_tiles": len(self.coords),
            "mask_threshold": None if self.mask is None else self.mask.threshold,
        }


def grid_coords(
    dimensions: tuple[int, int], size_level0: float
) -> tuple[np.ndarray, tuple[int, int]]:
    """Non-overlapping full tiles over the slide (partial edge tiles are dropped)."""
    width, height = dimensions
    cols = int(math.floor(width / size_level0 + 1e-9))
    rows = int(math.floor(height / size_level0 + 1e-9))
    xs = np.rint(np.arange(cols) * size_level0).astype(np.int64)
    ys = np.rint(np.arange(rows) * size_level0).astype(np.int64)
    gx, gy = np.meshgrid(xs, ys)  # row-major: tiles ordered top to bottom, left to right
    return np.stack([gx.ravel(), gy.ravel()], axis=1), (cols, rows)


def plan_tiles(slide: Slide, config: TilingConfig, mask: TissueMask | None = None) -> TileGrid:
    """Choose the tiles of a slide: grid → tissue filter → optional seeded cap."""
    geometry = TileGeometry.for_slide(slide, config.tile_px, config.target_mpp, config.resample)
    coords, shape = grid_coords(slide.dimensions, geometry.size_level0)
    if mask is None:
        mask = compute_tissue_mask(slide, config.mask, geometry.size_level0)
    fractions = mask.fractions(coords, geometry.size_level0)
    keep = fractions >= config.min_tissue_fraction
    coords, fractions = coords[keep], fractions[keep]
    if config.max_tiles is not None and len(coords) > config.max_tiles:
        rng = np.random.default_rng(config.seed)
        chosen = np.sort(rng.choice(len(coords), size=config.max_tiles, replace=False))
        coords, fractions = coords[chosen], fractions[chosen]
    return TileGrid(
        slide_path=slide.path,
        geometry=geometry,
        coords=coords.astype(np.int64),
        tissue_fractions=fractions.astype(np.float64),
        grid_shape=shape,
        mask=mask,
    )


def read_tile(slide: Slide, xy: Sequence[int] | np.ndarray, geometry: TileGeometry) -> Image.Image:
    """One RGB tile of ``geometry.tile_px`` pixels at level-0 corner ``xy``."""
    size = (geometry.read_px, geometry.read_px)
    region = slide.read_region((int(xy[0]), int(xy[1])), geometry.level, size)
    if geometry.read_px != geometry.tile_px:
        region = region.resize(
            (geometry.tile_px, geometry.tile_px), _PIL_RESAMPLE[geometry.resample]
        )
    return region


def iter_tiles(slide: Slide, coords: np.ndarray, geometry: TileGeometry) -> Iterator[Image.Image]:
    """RGB tiles in the order of ``coords``."""
    for xy in np.asarray(coords).reshape(-1, 2):
        yield read_tile(slide, xy, geometry)


def read_tiles_from_path(
    path: str | Path,
    coords: np.ndarray,
    geometry: TileGeometry,
    mpp_override: float | None = None,
) -> list[np.ndarray]:
    """Worker entry point: open the slide here, read ``coords``, return HWC uint8 arrays.

    Takes a path, not a ``Slide``: OpenSlide handles cannot cross process boundaries.
    """
    with open_slide(path, mpp_override=mpp_override) as slide:
        return [np.asarray(tile) for tile in iter_tiles(slide, coords, geometry)]


def tile_slide(
    path: str | Path,
    config: TilingConfig | None = None,
    preview_dir: str | Path | None = None,
) -> TileGrid:
    """Open a slide, compute its tissue mask and choose its tiles.

    With ``preview_dir``, also writes ``<stem>.mask.png`` (the tissue mask) and
    ``<stem>.tiles.png`` (the thumbnail with the kept tiles outlined) there, for checking.
    """
    config = config or TilingConfig()
    with open_slide(path, mpp_override=config.mpp_override) as slide:
        grid = plan_tiles(slide, config)
    if preview_dir is not None and grid.mask is not None:
        stem = Path(path).stem
        save_mask_png(grid.mask, Path(preview_dir) / f"{stem}.mask.png")
        save_grid_thumbnail(
            grid.mask,
            grid.coords,
            grid.geometry.size_level0,
            Path(preview_dir) / f"{stem}.tiles.png",
        )
    return grid
