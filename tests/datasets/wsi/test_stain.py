from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pydantic import ValidationError

from histobench.datasets.wsi.pipeline import (
    iter_normalised_tiles,
    read_normalised_tiles,
    read_normalised_tiles_parallel,
    read_tile_array,
)
from histobench.datasets.wsi.reader import open_slide
from histobench.datasets.wsi.stain import StainConfig, StainNormalizer
from histobench.datasets.wsi.tiling import TilingConfig, tile_slide
from histobench.plugins.errors import DataError

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


def test_eigh_failure_is_reported_not_raised(
    tum_tile: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import histobench.datasets.wsi.macenko as macenko

    def broken(matrices: np.ndarray) -> None:
        raise np.linalg.LinAlgError("Eigenvalues did not converge")

    monkeypatch.setattr(macenko.np.linalg, "eigh", broken)
    normalizer = StainNormalizer()
    tile = Image.open(tum_tile).convert("RGB")
    result = normalizer.normalize(tile)
    assert not result.ok and "did not converge" in (result.reason or "")
    assert normalizer(tile) is None


def _torchstain(tiles: np.ndarray) -> np.ndarray:
    import torchstain

    reference = torchstain.normalizers.MacenkoNormalizer(backend="torch")
    out = []
    for tile in tiles:
        normed, _, _ = reference.normalize(I=torch.from_numpy(tile.copy()).permute(2, 0, 1),
                                           stains=False)  # fmt: skip
        out.append(normed.numpy())
    return np.stack(out)


def test_batched_kernel_equals_torchstain_per_tile(cmu_slide: Path, tum_tile: Path) -> None:
    # Real tiles: 24 from the CMU slide (224 px at 0.5 µm/px) and one CRC tumour tile.
    grid = tile_slide(cmu_slide, TilingConfig(target_mpp=0.5, tile_px=224, max_tiles=24))
    with open_slide(cmu_slide) as slide:
        tiles = read_tile_array(slide, grid.coords, grid.geometry)
    tum = np.asarray(Image.open(tum_tile).convert("RGB").resize((224, 224)))
    tiles = np.concatenate([tiles, tum[None]])
    normalizer = StainNormalizer()
    out, reasons = normalizer.normalize_array(tiles)
    assert reasons == [None] * len(tiles)
    expected = _torchstain(tiles)
    diff = np.abs(out.astype(int) - expected)
    # Float rounding only: a pixel may land on the other side of an integer boundary.
    assert diff.max() <= 1 and (diff > 0).mean() < 0.005
    assert not np.array_equal(out, tiles)  # it did normalise
    # One tile at a time gives the same as the batch.
    single = normalizer.normalize(Image.fromarray(tiles[3]))
    np.testing.assert_array_equal(np.asarray(single.image), out[3])


def test_torchstain_backend_is_torchstain_itself(tum_tile: Path) -> None:
    tum = np.asarray(Image.open(tum_tile).convert("RGB").resize((224, 224)))
    blank = np.full_like(tum, 250)
    tiles = np.stack([tum, tum[::-1].copy(), blank])
    normalizer = StainNormalizer(StainConfig(backend="torchstain"))
    out, reasons = normalizer.normalize_array(tiles)
    assert reasons[:2] == [None, None] and "too little stained tissue" in str(reasons[2])
    np.testing.assert_array_equal(out[:2], _torchstain(tiles[:2]))
    np.testing.assert_array_equal(out[2], blank)  # a failed tile is left as read
    assert normalizer.identity()["backend"] == "torchstain"
    assert StainNormalizer().identity()["backend"] == "histobench-numba"


def test_batch_mixes_failed_and_normalised_tiles(tum_tile: Path) -> None:
    tum = np.asarray(Image.open(tum_tile).convert("RGB").resize((64, 64)))
    blank = np.full_like(tum, 250)
    out, reasons = StainNormalizer().normalize_array(np.stack([blank, tum, blank]))
    assert reasons[1] is None and "too little stained" in (reasons[0] or "")
    np.testing.assert_array_equal(out[0], blank)  # a failed tile is returned as read
    np.testing.assert_array_equal(out[1], np.asarray(StainNormalizer().normalize(
        Image.fromarray(tum)).image))  # fmt: skip
    assert np.abs(out[1].astype(int) - _torchstain(tum[None])[0]).max() <= 1


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
