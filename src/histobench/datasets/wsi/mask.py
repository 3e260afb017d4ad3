"""Tissue detection on a slide thumbnail: Otsu's threshold on HSV saturation.

H&E tissue is coloured (pink/purple) while glass, even when grey or yellowish, is nearly
unsaturated; saturation separates them better than brightness, which varies with scanner and
section thickness.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from pydantic import BaseModel, ConfigDict, Field
from skimage.filters import threshold_otsu

from histobench.datasets.wsi.reader import Slide


class MaskConfig(BaseModel):
    """How the tissue mask is computed."""

    model_config = ConfigDict(extra="forbid")

    thumbnail_px: int = Field(
        default=4096, ge=64, description="Largest longer side of the mask thumbnail."
    )
    min_thumbnail_px: int = Field(
        default=512, ge=16, description="Smallest longer side of the mask thumbnail."
    )
    px_per_tile: int = Field(
        default=8,
        ge=1,
        description="When tiling, size the thumbnail so one tile spans this many mask pixels "
        "(within the bounds above): fine enough to measure a tile's tissue fraction, coarse "
        "enough to stay cheap on small slides.",
    )
    saturation_threshold: float | None = Field(
        default=None, ge=0, le=1, description="Fixed HSV-saturation threshold (0–1); None = Otsu."
    )
    min_saturation: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="Floor under Otsu's threshold, so an all-glass slide yields no tissue "
        "instead of splitting noise in two.",
    )


@dataclass(frozen=True)
class TissueMask:
    """A boolean tissue mask at thumbnail scale and its mapping to level-0 pixels."""

    mask: np.ndarray  # (H, W) bool
    scale: tuple[float, float]  # level-0 pixels per mask pixel in x and y
    threshold: float  # saturation threshold used (0–1)
    thumbnail: Image.Image  # the RGB thumbnail the mask was computed on

    @property
    def tissue_fraction(self) -> float:
        return float(self.mask.mean()) if self.mask.size else 0.0

    def tissue_area_level0(self) -> float:
        """Tissue area in level-0 square pixels."""
        return float(self.mask.sum()) * self.scale[0] * self.scale[1]

    def fractions(self, coords: np.ndarray, size_level0: float) -> np.ndarray:
        """Tissue fraction of each square tile (x, y level-0 corner, side ``size_level0``).

        Uses a summed-area table, so it costs O(1) per tile whatever the tile size.
        """
        coords = np.asarray(coords, dtype=np.float64).reshape(-1, 2)
        height, width = self.mask.shape
        integral = np.zeros((height + 1, width + 1), dtype=np.int64)
        integral[1:, 1:] = self.mask.astype(np.int64).cumsum(0).cumsum(1)
        sx, sy = self.scale
        x0 = np.clip(np.floor(coords[:, 0] / sx), 0, width).astype(np.int64)
        y0 = np.clip(np.floor(coords[:, 1] / sy), 0, height).astype(np.int64)
        x1 = np.clip(np.ceil((coords[:, 0] + size_level0) / sx), 0, width).astype(np.int64)
        y1 = np.clip(np.ceil((coords[:, 1] + size_level0) / sy), 0, height).astype(np.int64)
        x1 = np.maximum(x1, np.minimum(x0 + 1, width))
        y1 = np.maximum(y1, np.minimum(y0 + 1, height))
        inside = integral[y1, x1] - integral[y0, x1] - integral[y1, x0] + integral[y0, x0]
        area = np.maximum((x1 - x0) * (y1 - y0), 1)
        return inside / area


def saturation(image: Image.Image) -> np.ndarray:
    """HSV saturation in [0, 1] of an RGB image."""
    return np.asarray(image.convert("RGB").convert("HSV"))[..., 1].astype(np.float32) / 255.0


def thumbnail_size(slide: Slide, config: MaskConfig, tile_size_level0: float | None) -> int:
    """Longer side of the mask thumbnail: ``px_per_tile`` mask pixels per tile, bounded."""
    if tile_size_level0 is None:
        return config.thumbnail_px
    wanted = math.ceil(config.px_per_tile * max(slide.dimensions) / tile_size_level0)
    return max(min(wanted, config.thumbnail_px), min(config.min_thumbnail_px, config.thumbnail_px))


def compute_tissue_mask(
    slide: Slide, config: MaskConfig | None = None, tile_size_level0: float | None = None
) -> TissueMask:
    """Tissue mask of ``slide``; ``tile_size_level0`` sizes the thumbnail to the tiles."""
    config = config or MaskConfig()
    thumb = slide.thumbnail(thumbnail_size(slide, config, tile_size_level0))
    sat = saturation(thumb)
    if config.saturation_threshold is not None:
        threshold = config.saturation_threshold
    elif sat.size and float(sat.max()) > float(sat.min()):
        threshold = max(float(threshold_otsu(sat)), config.min_saturation)
    else:  # a uniform thumbnail has no two classes to split
        threshold = max(float(sat.max()) if sat.size else 0.0, config.min_saturation)
    mask = sat > threshold
    width0, height0 = slide.dimensions
    scale = (width0 / thumb.width, height0 / thumb.height)
    return TissueMask(mask=mask, scale=scale, threshold=threshold, thumbnail=thumb)


def save_mask_png(mask: TissueMask, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((mask.mask * 255).astype(np.uint8), mode="L").save(path)
    return path


def save_grid_thumbnail(
    mask: TissueMask, coords: np.ndarray, size_level0: float, path: str | Path
) -> Path:
    """The thumbnail with glass dimmed and each kept tile outlined, for checking a tiling.

    Tissue keeps its true colours so a reader can judge what the mask kept.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    base = mask.thumbnail.convert("RGB")
    dimmed = Image.blend(base, Image.new("RGB", base.size, (60, 60, 90)), 0.35)
    overlay = Image.composite(base, dimmed, Image.fromarray(mask.mask).convert("L"))
    draw = ImageDraw.Draw(overlay)
    sx, sy = mask.scale
    for x, y in np.asarray(coords).reshape(-1, 2):
        box = (x / sx, y / sy, (x + size_level0) / sx - 1, (y + size_level0) / sy - 1)
        draw.rectangle(box, outline=(0, 200, 60), width=1)
    overlay.save(path)
    return path
