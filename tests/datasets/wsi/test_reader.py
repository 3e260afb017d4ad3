from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from histobench.datasets.wsi.reader import (
    mpp_from_properties,
    open_slide,
    slide_fingerprint,
    to_rgb,
)
from histobench.plugins.errors import DataError


def test_real_svs_mpp_and_geometry(cmu_slide: Path) -> None:
    with open_slide(cmu_slide) as slide:
        assert slide.mpp == pytest.approx(0.499)
        assert slide.dimensions == (2220, 2967)
        assert slide.level_count == 1


def test_pyramid_levels_and_mpp(pyramid_path: Path) -> None:
    with open_slide(pyramid_path) as slide:
        assert slide.level_count == 3
        assert slide.level_dimensions == ((2048, 1536), (1024, 768), (512, 384))
        assert slide.mpp == pytest.approx(0.25)
        assert [slide.level_mpp(i) for i in range(3)] == pytest.approx([0.25, 0.5, 1.0])


def test_best_level_is_coarsest_not_coarser_than_target(pyramid_path: Path) -> None:
    with open_slide(pyramid_path) as slide:
        assert slide.best_level(0.8) == 0  # target finer than level 0
        assert slide.best_level(1.0) == 0
        assert slide.best_level(1.99) == 0
        assert slide.best_level(2.0) == 1
        assert slide.best_level(3.9) == 1
        assert slide.best_level(3.9999) == 2  # tolerance for inexact vendor downsamples
        assert slide.best_level(16.0) == 2


def test_inch_resolution_unit(pyramid_inch_path: Path) -> None:
    with open_slide(pyramid_inch_path) as slide:
        assert slide.mpp == pytest.approx(0.5)


def test_override_wins_over_file(pyramid_path: Path) -> None:
    with open_slide(pyramid_path, mpp_override=0.3) as slide:
        assert slide.mpp == 0.3


def test_missing_mpp_is_an_error_naming_slide_and_fix(no_mpp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        open_slide(no_mpp_path)
    message = str(info.value)
    assert str(no_mpp_path) in message and "--mpp" in message and "mpp" in message
    assert "\n" not in message
    with open_slide(no_mpp_path, mpp_override=0.5) as slide:
        assert slide.mpp == 0.5


@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan")])
def test_invalid_override(pyramid_path: Path, bad: float) -> None:
    with pytest.raises(DataError, match="mpp override"):
        open_slide(pyramid_path, mpp_override=bad)


def test_mpp_from_properties_variants() -> None:
    assert mpp_from_properties({"openslide.mpp-x": "0.5", "openslide.mpp-y": "0.25"}) == 0.375
    cm = {"tiff.XResolution": "20000", "tiff.ResolutionUnit": "centimeter"}
    assert mpp_from_properties(cm) == pytest.approx(0.5)
    inch = {"tiff.XResolution": "101600", "tiff.ResolutionUnit": "inch"}
    assert mpp_from_properties(inch) == pytest.approx(0.25)
    # "none" units (tifffile's default when no resolution is given) carry no scale.
    assert mpp_from_properties({"tiff.XResolution": "1", "tiff.ResolutionUnit": "none"}) is None
    assert mpp_from_properties({"openslide.mpp-x": "0"}) is None
    assert mpp_from_properties({}) is None


def test_random_bytes_slide_is_data_error(tmp_path: Path) -> None:
    bad = tmp_path / "garbage.svs"
    bad.write_bytes(np.random.default_rng(0).bytes(50_000))
    with pytest.raises(DataError, match="garbage.svs"):
        open_slide(bad)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found"):
        open_slide(tmp_path / "absent.svs")


def test_truncated_slide_is_data_error(pyramid_path: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.tif"
    data = pyramid_path.read_bytes()
    cut.write_bytes(data[: len(data) // 3])
    # Either opening or reading a tile must fail cleanly; which one depends on where the cut is.
    with pytest.raises(DataError, match="cut.tif"), open_slide(cut) as slide:
        w, h = slide.dimensions
        for y in range(0, h, 256):
            for x in range(0, w, 256):
                slide.read_region((x, y), 0, (256, 256))


def test_plain_png_needs_override(tmp_path: Path) -> None:
    png = tmp_path / "tile.png"
    Image.new("RGB", (300, 200), (200, 120, 180)).save(png)
    with pytest.raises(DataError, match="--mpp"):
        open_slide(png)
    with open_slide(png, mpp_override=0.5) as slide:
        assert slide.dimensions == (300, 200)
        region = slide.read_region((10, 10), 0, (4, 4))
        assert region.mode == "RGB" and region.getpixel((0, 0)) == (200, 120, 180)


def test_slide_is_not_picklable(pyramid_path: Path) -> None:
    with open_slide(pyramid_path) as slide, pytest.raises(TypeError, match="by path"):
        pickle.dumps(slide)


def test_to_rgb_composites_transparency_on_white() -> None:
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (100, 50, 0, 255)  # opaque
    rgba[0, 1] = (0, 0, 0, 0)  # outside the scanned area
    rgba[1, 0] = (0, 0, 0, 128)  # half transparent black
    rgb = np.asarray(to_rgb(Image.fromarray(rgba, mode="RGBA")))
    assert rgb[0, 0].tolist() == [100, 50, 0]
    assert rgb[0, 1].tolist() == [255, 255, 255]
    assert rgb[1, 0].tolist() == [127, 127, 127]


def test_read_region_outside_slide_is_white(pyramid_path: Path) -> None:
    with open_slide(pyramid_path) as slide:
        region = np.asarray(slide.read_region((2040, 1530), 0, (16, 16)))
    assert region.shape == (16, 16, 3)
    assert (region[-4:, -4:] == 255).all()


def test_fingerprint_changes_with_content(tmp_path: Path) -> None:
    a, b = tmp_path / "a.svs", tmp_path / "b.svs"
    a.write_bytes(b"x" * 3_000_000)
    b.write_bytes(b"x" * 2_999_999 + b"y")  # differs only in the last byte
    assert slide_fingerprint(a) != slide_fingerprint(b)
    assert slide_fingerprint(a) == slide_fingerprint(a)
