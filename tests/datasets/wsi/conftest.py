"""Fixtures: real sample files from ../shared/data and generated pyramidal TIFFs.

OpenSlide's generic-TIFF driver takes every *top-level* tiled directory as a pyramid level
(SubIFDs are not followed), so the fixtures write one tiled page per level. tifffile can
only write JPEG through imagecodecs, which is not a dependency; tiles are deflate-compressed
or uncompressed instead, both of which OpenSlide decodes through libtiff.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
import tifffile

SHARED_DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"
CMU_SLIDE = SHARED_DATA / "wsi" / "CMU-1-Small-Region.svs"
TUM_DIR = SHARED_DATA / "crc-sample" / "TUM"

# Level-0 size of generated slides and their tissue: two ellipses, in level-0 pixels.
PYRAMID_SIZE = (2048, 1536)  # width, height
BLOBS = ((700, 600, 450, 330), (1550, 1000, 300, 260))  # centre x, centre y, radius x, radius y


@lru_cache(maxsize=4)
def tissue_image(width: int, height: int, seed: int = 0) -> np.ndarray:
    """Pink/purple H&E-like blobs on near-white glass, with nucleus-like dark specks."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    image = np.empty((height, width, 3), np.float32)
    image[:] = (242, 240, 244)
    inside = np.zeros((height, width), bool)
    for cx, cy, rx, ry in BLOBS:
        inside |= ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1
    # Eosin-pink stroma with a smooth texture, plus haematoxylin-purple nuclei.
    texture = rng.normal(0, 1, (height // 16 + 1, width // 16 + 1)).repeat(16, 0).repeat(16, 1)
    texture = texture[:height, :width, None]
    stroma = np.array([225, 140, 185], np.float32) + 18 * texture
    image[inside] = stroma[inside]
    nuclei = inside & (rng.random((height, width)) < 0.02)
    nuclei = (
        nuclei | np.roll(nuclei, 1, 0) | np.roll(nuclei, 1, 1) | np.roll(nuclei, (1, 1), (0, 1))
    )
    image[nuclei] = (95, 55, 150)
    image += rng.normal(0, 3, image.shape)
    out = np.clip(image, 0, 255).astype(np.uint8)
    out.flags.writeable = False  # shared through the cache
    return out


def _halve(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
    blocks = image[:h, :w].reshape(h // 2, 2, w // 2, 2, 3).astype(np.float32)
    return np.rint(blocks.mean(axis=(1, 3))).astype(np.uint8)


def write_pyramid(
    path: Path,
    mpp: float | None = 0.25,
    levels: int = 3,
    unit: str = "CENTIMETER",
    compression: str | None = "zlib",
    size: tuple[int, int] = PYRAMID_SIZE,
) -> Path:
    """A tiled pyramidal TIFF with ``levels`` levels, each half the size of the previous."""
    image = tissue_image(*size)
    microns = {"CENTIMETER": 1e4, "INCH": 25_400.0}[unit]
    with tifffile.TiffWriter(path) as tif:
        for level in range(levels):
            kwargs = {}
            if mpp is not None:
                pixels_per_unit = microns / (mpp * 2**level)
                kwargs = {"resolution": (pixels_per_unit, pixels_per_unit), "resolutionunit": unit}
            tif.write(
                image,
                tile=(256, 256),
                photometric="rgb",
                compression=compression,
                subfiletype=1 if level else 0,  # reduced-resolution image
                **kwargs,
            )
            image = _halve(image)
    return path


@pytest.fixture(scope="session")
def pyramid_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3 levels at 0.25 / 0.5 / 1.0 µm/px, deflate tiles, resolution in centimetres."""
    return write_pyramid(tmp_path_factory.mktemp("wsi") / "pyramid.tif")


@pytest.fixture(scope="session")
def pyramid_inch_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """2 levels at 0.5 / 1.0 µm/px, uncompressed tiles, resolution in inches."""
    return write_pyramid(
        tmp_path_factory.mktemp("wsi") / "inch.tif",
        mpp=0.5,
        levels=2,
        unit="INCH",
        compression=None,
    )


@pytest.fixture(scope="session")
def no_mpp_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiled TIFF without resolution tags."""
    return write_pyramid(tmp_path_factory.mktemp("wsi") / "nompp.tif", mpp=None, levels=2)


@pytest.fixture
def cmu_slide() -> Path:
    if not CMU_SLIDE.is_file():
        pytest.skip(f"real sample slide absent: {CMU_SLIDE}")
    return CMU_SLIDE


@pytest.fixture
def tum_tile() -> Path:
    tiles = sorted(TUM_DIR.glob("*.tif")) if TUM_DIR.is_dir() else []
    if not tiles:
        pytest.skip(f"real H&E tiles absent: {TUM_DIR}")
    return tiles[0]
