"""Open whole-slide images through OpenSlide and resolve their resolution (µm per pixel).

Every failure the user can cause (a corrupt file, an unsupported format, a slide without a
recorded resolution) becomes a one-line ``DataError`` naming the slide. A slide's mpp is never
guessed: tiling at a wrong scale silently ruins every feature computed from it.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType

import numpy as np
import openslide
from PIL import Image

from histobench.plugins.errors import DataError

# Formats OpenSlide reads natively; used when scanning a folder for slides.
SLIDE_SUFFIXES: tuple[str, ...] = (
    ".svs",
    ".tif",
    ".tiff",
    ".ndpi",
    ".mrxs",
    ".scn",
    ".svslide",
    ".bif",
    ".vms",
    ".vmu",
)
# Plain images OpenSlide cannot open; read whole through PIL (openslide.ImageSlide).
PLAIN_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff")

# Lengths of one resolution unit in µm, for TIFF XResolution (pixels per unit).
_UNIT_MICRONS = {"centimeter": 1e4, "inch": 25_400.0}


def _positive_float(value: object) -> float | None:
    try:
        number = float(str(value))
    except ValueError:
        return None
    return number if math.isfinite(number) and number > 0 else None


def mpp_from_properties(properties: Mapping[str, str]) -> float | None:
    """The slide's µm/px from OpenSlide properties, or None where nothing records it.

    ``openslide.mpp-x/y`` first (set by the vendor drivers), then the TIFF resolution tags,
    which a generic tiled TIFF may carry without OpenSlide turning them into mpp (it does so
    only for centimetres). Non-square pixels are averaged: tiles are square.
    """
    mpp_x = _positive_float(properties.get("openslide.mpp-x"))
    mpp_y = _positive_float(properties.get("openslide.mpp-y"))
    if mpp_x and mpp_y:
        return (mpp_x + mpp_y) / 2
    if mpp_x or mpp_y:
        return mpp_x or mpp_y
    unit = str(properties.get("tiff.ResolutionUnit", "")).strip().lower()
    microns = _UNIT_MICRONS.get(unit)
    x_res = _positive_float(properties.get("tiff.XResolution"))
    y_res = _positive_float(properties.get("tiff.YResolution")) or x_res
    if microns is None or x_res is None or y_res is None:
        return None
    return (microns / x_res + microns / y_res) / 2


class Slide:
    """An open slide with a known resolution; a thin layer over an OpenSlide object.

    Not picklable on purpose: worker processes open their own ``Slide`` from ``path``.
    """

    def __init__(self, handle: openslide.AbstractSlide, path: Path, mpp: float) -> None:
        self._handle = handle
        self.path = path
        self.mpp = mpp

    # --- geometry --------------------------------------------------------------------------
    @property
    def dimensions(self) -> tuple[int, int]:
        return tuple(self._handle.dimensions)  # type: ignore[return-value]

    @property
    def level_count(self) -> int:
        return int(self._handle.level_count)

    @property
    def level_dimensions(self) -> tuple[tuple[int, int], ...]:
        return tuple(tuple(d) for d in self._handle.level_dimensions)  # type: ignore[misc]

    @property
    def level_downsamples(self) -> tuple[float, ...]:
        return tuple(float(d) for d in self._handle.level_downsamples)

    @property
    def properties(self) -> Mapping[str, str]:
        return self._handle.properties

    def level_mpp(self, level: int) -> float:
        return self.mpp * self.level_downsamples[level]

    def best_level(self, downsample: float) -> int:
        """The coarsest level whose resolution is still at least as fine as ``downsample``.

        A relative tolerance absorbs vendors' inexact downsamples (e.g. 3.9998 for 4).
        """
        best = 0
        for level, level_ds in enumerate(self.level_downsamples):
            if level_ds <= downsample * (1 + 1e-3) and level_ds >= self.level_downsamples[best]:
                best = level
        return best

    # --- pixels ----------------------------------------------------------------------------
    def read_region(
        self, location: tuple[int, int], level: int, size: tuple[int, int]
    ) -> Image.Image:
        """An RGB region; ``location`` in level-0 pixels, ``size`` in pixels of ``level``.

        OpenSlide returns RGBA with transparent pixels outside the scanned area; they are
        composited on white (glass), so the tissue mask and the stain estimate see background.
        """
        try:
            region = self._handle.read_region(location, level, size)
        except openslide.OpenSlideError as exc:
            raise DataError(f"{self.path}: cannot read region {location}: {exc}") from exc
        return to_rgb(region)

    def thumbnail(self, max_px: int) -> Image.Image:
        """A thumbnail whose longer side is at most ``max_px`` pixels, RGB on white."""
        try:
            thumb = self._handle.get_thumbnail((max_px, max_px))
        except openslide.OpenSlideError as exc:
            raise DataError(f"{self.path}: cannot read a thumbnail: {exc}") from exc
        return to_rgb(thumb)

    # --- lifetime --------------------------------------------------------------------------
    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> Slide:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("Slide objects are not picklable; open the slide by path in the worker")

    def __repr__(self) -> str:
        return f"Slide({str(self.path)!r}, mpp={self.mpp:g}, dims={self.dimensions})"


def to_rgb(image: Image.Image) -> Image.Image:
    """RGBA (non-premultiplied, as openslide-python returns it) → RGB composited on white."""
    if image.mode == "RGB":
        return image
    if image.mode != "RGBA":
        return image.convert("RGB")
    alpha_min, _ = image.getchannel("A").getextrema()
    if alpha_min == 255:  # the common case: fully opaque tissue area, no blending needed
        return image.convert("RGB")
    rgba = np.asarray(image, dtype=np.float32)
    alpha = rgba[..., 3:4] / 255.0
    rgb = rgba[..., :3] * alpha + 255.0 * (1.0 - alpha)
    return Image.fromarray(np.rint(rgb).astype(np.uint8), mode="RGB")


def open_slide(path: str | Path, mpp_override: float | None = None) -> Slide:
    """Open a slide; its mpp comes from ``mpp_override`` if given, else from the file.

    Raises ``DataError`` for a missing, corrupt or unsupported file, or a slide whose
    resolution is recorded nowhere and not given.
    """
    path = Path(path)
    if mpp_override is not None and not (math.isfinite(mpp_override) and mpp_override > 0):
        raise DataError(f"{path}: mpp override must be a positive number, got {mpp_override}")
    if not path.is_file():
        raise DataError(f"{path}: slide file not found")
    handle: openslide.AbstractSlide
    try:
        handle = openslide.OpenSlide(str(path))
    except openslide.OpenSlideUnsupportedFormatError as exc:
        if path.suffix.lower() not in PLAIN_IMAGE_SUFFIXES:
            raise DataError(f"{path}: not a slide format OpenSlide can read") from exc
        handle = _open_plain_image(path, mpp_override)
    except openslide.OpenSlideError as exc:
        raise DataError(f"{path}: corrupt or unreadable slide: {exc}") from exc
    except OSError as exc:
        raise DataError(f"{path}: cannot open slide: {exc}") from exc
    mpp = mpp_override if mpp_override is not None else mpp_from_properties(handle.properties)
    if mpp is None:
        handle.close()
        raise DataError(
            f"{path}: slide records no resolution (µm/px); pass --mpp or add an 'mpp' column "
            "to the slide manifest"
        )
    return Slide(handle, path, float(mpp))


def _open_plain_image(path: Path, mpp_override: float | None) -> openslide.ImageSlide:
    # A plain image carries no trustworthy scan resolution (DPI tags are about printing),
    # so it is only accepted with an explicit mpp.
    # First make sure it is an image at all: a truncated slide TIFF also lands here, and
    # "pass --mpp" would send its owner the wrong way.
    try:
        with Image.open(path) as probe:
            probe.load()  # decodes: verify() passes a TIFF cut short
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise DataError(f"{path}: corrupt, truncated or unsupported slide file: {exc}") from exc
    if mpp_override is None:
        raise DataError(
            f"{path}: plain image without a slide resolution; pass --mpp or add an 'mpp' "
            "column to the slide manifest"
        )
    try:
        return openslide.ImageSlide(str(path))
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"{path}: not a readable slide or image: {exc}") from exc


def slide_fingerprint(path: str | Path, chunk: int = 1 << 20) -> str:
    """Content identity for feature-cache keys without hashing gigabytes.

    Size plus the first and last MiB: slide files are written once, and their headers and
    tail directories differ between any two scans.
    """
    path = Path(path)
    size = path.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with path.open("rb") as fh:
        digest.update(fh.read(chunk))
        if size > chunk:
            fh.seek(max(chunk, size - chunk))
            digest.update(fh.read(chunk))
    return digest.hexdigest()[:24]
