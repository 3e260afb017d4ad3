from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import openslide
import pytest
from PIL import Image
from pydantic import ValidationError

from histobench.datasets.wsi.mask import (
    MaskConfig,
    compute_tissue_mask,
    saturation,
    save_grid_thumbnail,
    save_mask_png,
)
from histobench.datasets.wsi.pipeline import read_normalised_tiles, read_normalised_tiles_parallel
from histobench.datasets.wsi.reader import open_slide
from histobench.datasets.wsi.stain import StainConfig
from histobench.datasets.wsi.tiling import (
    TileGeometry,
    TilingConfig,
    grid_coords,
    iter_tiles,
    plan_tiles,
    read_tile,
    read_tiles_from_path,
    tile_slide,
)

from .conftest import BLOBS


# --- the real slide ---------------------------------------------------------------------------
def test_cmu_tile_counts_follow_resolution_and_tissue_area(cmu_slide: Path) -> None:
    with open_slide(cmu_slide) as slide:
        mask = compute_tissue_mask(slide)
        coarse = plan_tiles(slide, TilingConfig(target_mpp=0.5), mask=mask)
        fine = plan_tiles(slide, TilingConfig(target_mpp=0.25), mask=mask)
    # Tissue is about a quarter of this slide (glass around a strip of skin).
    assert 0.15 < mask.tissue_fraction < 0.45
    assert coarse.geometry.size_level0 == pytest.approx(224 * 0.5 / 0.499)
    assert fine.geometry.size_level0 == pytest.approx(224 * 0.25 / 0.499)
    # Halving the µm/px quarters the area of a tile: about 4× as many tiles.
    assert 3.5 < len(fine) / len(coarse) < 4.5
    # The tissue inside the kept tiles accounts for most of the tissue on the slide.
    for grid in (coarse, fine):
        covered = grid.tissue_fractions.sum() * grid.geometry.size_level0**2
        assert 0.8 < covered / mask.tissue_area_level0() <= 1.0
        assert (grid.tissue_fractions >= 0.25).all()


def test_cmu_pipeline_tile_equals_direct_openslide_read(cmu_slide: Path) -> None:
    grid = tile_slide(cmu_slide, TilingConfig(target_mpp=0.25, resample="bicubic"))
    x, y = (int(v) for v in grid.coords[len(grid) // 2])
    geometry = grid.geometry
    assert geometry.level == 0 and geometry.read_px == round(224 * 0.25 / 0.499)
    with open_slide(cmu_slide) as slide:
        ours = np.asarray(next(iter_tiles(slide, grid.coords[len(grid) // 2 :], geometry)))
    raw = openslide.OpenSlide(str(cmu_slide))
    direct = raw.read_region((x, y), 0, (geometry.read_px, geometry.read_px)).convert("RGB")
    direct = np.asarray(direct.resize((224, 224), Image.Resampling.BICUBIC))
    raw.close()
    assert ours.shape == (224, 224, 3)
    np.testing.assert_array_equal(ours, direct)


def test_cmu_mask_and_grid_pngs(cmu_slide: Path, tmp_path: Path) -> None:
    with open_slide(cmu_slide) as slide:
        mask = compute_tissue_mask(slide, MaskConfig(thumbnail_px=512))
        grid = plan_tiles(slide, TilingConfig(target_mpp=0.5), mask=mask)
    mask_png = save_mask_png(mask, tmp_path / "out" / "mask.png")
    grid_png = save_grid_thumbnail(mask, grid.coords, grid.geometry.size_level0, tmp_path / "g.png")
    saved = np.asarray(Image.open(mask_png))
    assert saved.shape == mask.mask.shape and max(saved.shape) == 512
    np.testing.assert_array_equal(saved > 0, mask.mask)
    thumb = Image.open(grid_png)
    assert thumb.size == mask.thumbnail.size
    # The grid lines are drawn in green, which the H&E thumbnail itself does not contain.
    pixels = np.asarray(thumb.convert("RGB")).reshape(-1, 3)
    assert ((pixels == (0, 200, 60)).all(axis=1)).sum() > 100


def test_tile_slide_writes_previews_when_asked(cmu_slide: Path, tmp_path: Path) -> None:
    grid = tile_slide(cmu_slide, TilingConfig(target_mpp=0.5), preview_dir=tmp_path / "prev")
    stem = cmu_slide.stem
    mask = np.asarray(Image.open(tmp_path / "prev" / f"{stem}.mask.png")) > 0
    assert grid.mask is not None
    np.testing.assert_array_equal(mask, grid.mask.mask)
    assert Image.open(tmp_path / "prev" / f"{stem}.tiles.png").size == grid.mask.thumbnail.size
    described = grid.describe()
    assert described["n_tiles"] == len(grid) and described["read_level"] == 0
    assert described["tile_size_level0"] == pytest.approx(224 * 0.5 / 0.499)


# --- generated pyramids -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("target_mpp", "level", "read_px"),
    [
        (1.0, 2, 224),
        (0.5, 1, 224),
        (0.7, 1, round(224 * 0.7 / 0.5)),
        (0.25, 0, 224),
        (0.2, 0, round(224 * 0.2 / 0.25)),
    ],
)
def test_level_selection(pyramid_path: Path, target_mpp: float, level: int, read_px: int) -> None:
    with open_slide(pyramid_path) as slide:
        geometry = TileGeometry.for_slide(slide, 224, target_mpp)
    assert geometry.level == level
    assert geometry.read_px == read_px
    assert geometry.size_level0 == pytest.approx(224 * target_mpp / 0.25)


def test_tile_at_1um_is_read_from_the_1um_level(pyramid_path: Path) -> None:
    grid = tile_slide(
        pyramid_path, TilingConfig(target_mpp=1.0, tile_px=64, min_tissue_fraction=0.5)
    )
    assert grid.geometry.level == 2 and grid.geometry.read_px == 64
    x, y = grid.coords[0]
    raw = openslide.OpenSlide(str(pyramid_path))
    level2 = np.asarray(raw.read_region((int(x), int(y)), 2, (64, 64)).convert("RGB"))
    level0 = np.asarray(
        raw.read_region((int(x), int(y)), 0, (256, 256)).convert("RGB").resize((64, 64))
    )
    raw.close()
    with open_slide(pyramid_path) as slide:
        tile = np.asarray(read_tile(slide, grid.coords[0], grid.geometry))
    np.testing.assert_array_equal(tile, level2)
    # Sanity: a level-0 read + resize is close but not identical, so the check above is sharp.
    assert not np.array_equal(tile, level0)


def _inside_blobs(x: float, y: float) -> bool:
    return any(((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1 for cx, cy, rx, ry in BLOBS)


def test_pyramid_tiles_sit_on_tissue(pyramid_path: Path) -> None:
    config = TilingConfig(target_mpp=0.5, tile_px=56, min_tissue_fraction=0.9)
    grid = tile_slide(pyramid_path, config)
    size = grid.geometry.size_level0
    assert size == pytest.approx(112)
    all_coords, shape = grid_coords((2048, 1536), size)
    assert shape == (18, 13) and len(all_coords) == 18 * 13
    # Tiles whose centre is deep inside a blob must be kept; tiles far outside must not.
    centres = grid.coords + size / 2
    assert all(_inside_blobs(x, y) for x, y in centres)
    deep = [
        (x, y)
        for x, y in all_coords
        if all(_inside_blobs(x + dx, y + dy) for dx in (0, size) for dy in (0, size))
    ]
    assert len(deep) >= 20
    kept = {tuple(c) for c in grid.coords.tolist()}
    assert {tuple(int(v) for v in c) for c in deep} <= kept
    with open_slide(pyramid_path) as slide:
        sats = [saturation(t).mean() for t in iter_tiles(slide, grid.coords, grid.geometry)]
    assert min(sats) > 0.2  # glass has saturation ≈ 0.02


def test_max_tiles_is_a_seeded_subset(pyramid_path: Path) -> None:
    full = tile_slide(pyramid_path, TilingConfig(target_mpp=0.5, tile_px=56))
    capped = [
        tile_slide(pyramid_path, TilingConfig(target_mpp=0.5, tile_px=56, max_tiles=10, seed=s))
        for s in (1, 1, 2)
    ]
    assert len(full) > 10 and all(len(c) == 10 for c in capped)
    np.testing.assert_array_equal(capped[0].coords, capped[1].coords)
    assert not np.array_equal(capped[0].coords, capped[2].coords)
    full_set = {tuple(c) for c in full.coords.tolist()}
    assert {tuple(c) for c in capped[2].coords.tolist()} <= full_set


def test_tiles_are_rgb_and_sized(pyramid_path: Path) -> None:
    grid = tile_slide(pyramid_path, TilingConfig(target_mpp=0.7, tile_px=100, max_tiles=3))
    with open_slide(pyramid_path) as slide:
        tiles = list(iter_tiles(slide, grid.coords, grid.geometry))
    assert [(t.mode, t.size) for t in tiles] == [("RGB", (100, 100))] * 3


def test_mask_thumbnail_is_sized_to_the_tiles(pyramid_path: Path) -> None:
    # 1.0 µm/px, 64 px tiles: 256 level-0 px per tile, 8 tiles along the 2048-px side.
    config = TilingConfig(target_mpp=1.0, tile_px=64, mask=MaskConfig(min_thumbnail_px=16))
    grid = tile_slide(pyramid_path, config)
    assert grid.mask is not None and grid.mask.mask.shape == (48, 64)  # 8 mask px per tile
    config = TilingConfig(target_mpp=1.0, tile_px=64)  # default floor of 512 px
    default_mask = tile_slide(pyramid_path, config).mask
    assert default_mask is not None and default_mask.mask.shape == (384, 512)
    fine = TilingConfig(target_mpp=0.25, tile_px=16, mask=MaskConfig(thumbnail_px=1000))
    fine_mask = tile_slide(pyramid_path, fine).mask
    assert fine_mask is not None and max(fine_mask.mask.shape) == 1000


def test_blank_slide_gives_no_tiles(tmp_path: Path) -> None:
    png = tmp_path / "glass.png"
    Image.new("RGB", (600, 600), (245, 245, 245)).save(png)
    grid = tile_slide(png, TilingConfig(mpp_override=0.5, target_mpp=0.5, tile_px=100))
    assert len(grid) == 0 and grid.coords.shape == (0, 2)


def test_worker_processes_match_in_process_reads(pyramid_path: Path) -> None:
    # "spawn", as the benchmark and a CUDA-using parent need: nothing is inherited, so this
    # proves the worker functions need only picklable arguments and open the slide by path.
    grid = tile_slide(pyramid_path, TilingConfig(target_mpp=0.5, tile_px=64, max_tiles=6))
    with open_slide(pyramid_path) as slide:
        local = [np.asarray(t) for t in iter_tiles(slide, grid.coords, grid.geometry)]
    stain = StainConfig(on_failure="skip")
    local_normed = read_normalised_tiles(pyramid_path, grid.coords, grid.geometry, stain)
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        remote = pool.submit(read_tiles_from_path, pyramid_path, grid.coords, grid.geometry)
        sharded = read_normalised_tiles_parallel(
            pool, 3, pyramid_path, grid.coords, grid.geometry, stain
        )
        remote_tiles = remote.result()
    assert len(remote_tiles) == 6
    for a, b in zip(local, remote_tiles, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(sharded.indices, local_normed.indices)
    np.testing.assert_array_equal(sharded.coords, local_normed.coords)
    assert len(sharded.tiles) == len(local_normed.tiles) > 0
    for a, b in zip(sharded.tiles, local_normed.tiles, strict=True):
        np.testing.assert_array_equal(a, b)


def test_config_rejects_unknown_and_invalid_fields() -> None:
    with pytest.raises(ValidationError, match="tile_size"):
        TilingConfig(tile_size=256)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="target_mpp"):
        TilingConfig(target_mpp=0)
    with pytest.raises(ValidationError, match="thumbnail"):
        TilingConfig(mask={"thumbnail": 10})  # type: ignore[arg-type]
