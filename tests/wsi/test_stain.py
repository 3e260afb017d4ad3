from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pydantic import ValidationError

from histobench.benchmark.errors import DataError
from histobench.datasets.wsi.pipeline import (
    iter_normalised_tiles,
    read_normalised_tiles,
    read_normalised_tiles_parallel,
)
from histobench.datasets.wsi.reader import open_slide
from histobench.datasets.wsi.stain import StainConfig, StainNormalizer
from histobench.datasets.wsi.tiling import TilingConfig, tile_slide

WHITE = Image.new("RGB", (224, 224), (250, 250, 250))


def test_macenko_changes_a_real_tile_deterministically(tum_tile: Path) -> None:
    tile = Image.open(tum_tile).convert("RGB")
    first = StainNormalizer().normalize(tile)
    second = StainNormalizer().normalize(tile)
    assert first.ok and first.reason is None
    out, original = np.asarray(first.image).astype(int), np.asarray(tile).astype(int)
    assert out.shape == original.shape
    assert np.abs(out - original).mean() > 2  # visibly recoloured
    # Structure is kept: the normalised tile still correlates strongly with the input.
    assert np.corrcoef(out.mean(axis=2).ravel(), original.mean(axis=2).ravel())[0, 1] > 0.8
    np.testing.assert_array_equal(np.asarray(first.image), np.asarray(second.image))


def test_fitting_the_tile_itself_as_reference_changes_it_less(tum_tile: Path) -> None:
    tile = Image.open(tum_tile).convert("RGB")
    default = StainNormalizer()
    fitted = StainNormalizer(StainConfig(reference=tum_tile))
    original = np.asarray(tile).astype(int)
    change_default = np.abs(np.asarray(default.normalize(tile).image).astype(int) - original)
    change_self = np.abs(np.asarray(fitted.normalize(tile).image).astype(int) - original)
    assert change_self.mean() < change_default.mean()
    assert default.identity()["reference_digest"] != fitted.identity()["reference_digest"]
    assert fitted.identity()["reference"] == "fitted"


def test_blank_tile_skip_policy() -> None:
    normalizer = StainNormalizer(StainConfig(on_failure="skip"))
    result = normalizer.normalize(WHITE)
    assert not result.ok and "too little stained tissue" in (result.reason or "")
    assert normalizer(WHITE) is None


def test_blank_tile_keep_policy() -> None:
    normalizer = StainNormalizer(StainConfig(on_failure="keep"))
    kept = normalizer(WHITE)
    assert kept is not None
    np.testing.assert_array_equal(np.asarray(kept), np.asarray(WHITE))


def test_flat_colour_tile_fails() -> None:
    # Passes the stained-pixel rule, but one colour has no stain plane; torchstain itself
    # would return an arbitrary recolouring.
    flat = Image.new("RGB", (64, 64), (150, 80, 160))
    result = StainNormalizer(StainConfig(on_failure="keep")).normalize(flat)
    assert not result.ok and "colour variation" in (result.reason or "")
    assert result.image is flat


def test_torchstain_exception_is_reported_not_raised(
    tum_tile: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    normalizer = StainNormalizer()

    def broken(*args: object, **kwargs: object) -> None:
        # What torch.linalg raises on an ill-conditioned covariance (a RuntimeError subclass).
        raise torch.linalg.LinAlgError("linalg.eigh: The algorithm failed to converge")

    monkeypatch.setattr(normalizer._normalizer, "normalize", broken)
    tile = Image.open(tum_tile).convert("RGB")
    result = normalizer.normalize(tile)
    assert not result.ok and "failed to converge" in (result.reason or "")
    assert normalizer(tile) is None


def test_disabled_is_identity(tum_tile: Path) -> None:
    tile = Image.open(tum_tile).convert("RGB")
    normalizer = StainNormalizer(StainConfig(enabled=False))
    np.testing.assert_array_equal(np.asarray(normalizer(tile)), np.asarray(tile))
    assert normalizer.identity() == {"enabled": False}


def test_identity_records_policy_and_reference() -> None:
    skip, keep = StainNormalizer(), StainNormalizer(StainConfig(on_failure="keep"))
    assert skip.identity()["method"] == "macenko"
    assert skip.identity()["reference_digest"] == keep.identity()["reference_digest"]
    assert skip.identity() != keep.identity()


def test_blank_reference_is_data_error(tmp_path: Path) -> None:
    reference = tmp_path / "white.png"
    WHITE.save(reference)
    with pytest.raises(DataError, match="white.png"):
        StainNormalizer(StainConfig(reference=reference))


def test_config_forbids_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        StainConfig(policy="skip")  # type: ignore[call-arg]


def test_pipeline_applies_policy_to_slide_tiles(pyramid_path: Path) -> None:
    # min_tissue_fraction=0 keeps glass tiles, which must fail the stain estimate.
    grid = tile_slide(pyramid_path, TilingConfig(target_mpp=1.0, tile_px=64, min_tissue_fraction=0))
    assert len(grid) == 8 * 6
    skip = read_normalised_tiles(pyramid_path, grid.coords, grid.geometry, StainConfig())
    keep = read_normalised_tiles(
        pyramid_path, grid.coords, grid.geometry, StainConfig(on_failure="keep")
    )
    failed = {index for index, _ in skip.stain_failures}
    assert failed and len(failed) < len(grid)  # glass tiles fail, tissue tiles do not
    assert sorted(failed | set(skip.indices.tolist())) == list(range(len(grid)))
    assert not failed & set(skip.indices.tolist())
    np.testing.assert_array_equal(skip.coords, grid.coords[skip.indices])
    assert len(keep.tiles) == len(grid) and {i for i, _ in keep.stain_failures} == failed
    with open_slide(pyramid_path) as slide:
        pairs = list(iter_normalised_tiles(slide, grid.coords, grid.geometry, None))
    assert [i for i, _ in pairs] == list(range(len(grid)))
    glass = min(failed)
    np.testing.assert_array_equal(keep.tiles[glass], np.asarray(pairs[glass][1]))


def test_all_glass_slide_gives_an_empty_batch(tmp_path: Path) -> None:
    png = tmp_path / "glass.png"
    Image.new("RGB", (400, 300), (245, 245, 245)).save(png)
    config = TilingConfig(mpp_override=0.5, target_mpp=0.5, tile_px=100, min_tissue_fraction=0)
    grid = tile_slide(png, config)
    assert len(grid) == 12
    with ThreadPoolExecutor(2) as pool:  # any Executor works; threads keep this test fast
        batch = read_normalised_tiles_parallel(
            pool, 2, png, grid.coords, grid.geometry, StainConfig(), mpp_override=0.5
        )
    assert batch.tiles.shape == (0, 100, 100, 3) and batch.coords.shape == (0, 2)
    assert sorted(i for i, _ in batch.stain_failures) == list(range(12))
