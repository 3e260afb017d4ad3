"""Decoding tiles into RGB, with a clear reason when a file cannot be used.

Any failure to decode one file is that file's problem, never the run's: it becomes a
:class:`BadImage` whose message is recorded as the item's skip reason. Pillow's pixel limit
stays on: an image whose header claims more pixels than ``Image.MAX_IMAGE_PIXELS`` (a
decompression bomb) is refused before its pixels are allocated, even between Pillow's warning
and error thresholds, because no H&E tile is that large (whole slides go through OpenSlide).
"""

from __future__ import annotations

import warnings
from pathlib import Path

from PIL import Image, UnidentifiedImageError

GREYSCALE_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}


class BadImage(Exception):
    """An image file that cannot serve as an H&E tile; the message is the recorded reason."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text[:120]}" if text else type(exc).__name__


def open_rgb(path: Path | str) -> Image.Image:
    """Decode fully (truncation shows only then) and return RGB.

    RGBA and palette images are composited on white, as slide scanners render background;
    greyscale is refused because H&E features need colour.
    """
    try:
        with warnings.catch_warnings():
            # Pillow only warns between MAX_IMAGE_PIXELS and twice that; refuse those too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as opened:
                if opened.width == 0 or opened.height == 0:
                    raise BadImage(f"image of zero size ({opened.width}×{opened.height})")
                opened.load()
                return _to_rgb(opened)
    except BadImage:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise BadImage(f"decompression bomb refused ({str(exc).split(',')[0]})") from exc
    except UnidentifiedImageError as exc:
        raise BadImage("not a readable image") from exc
    except MemoryError as exc:
        raise BadImage("image too large to decode in memory") from exc
    except Exception as exc:  # noqa: BLE001 - any decoder failure belongs to this one file
        raise BadImage(f"cannot decode image ({_first_line(exc)})") from exc


def _to_rgb(opened: Image.Image) -> Image.Image:
    mode = opened.mode
    if mode in GREYSCALE_MODES:
        raise BadImage(f"greyscale image (mode {mode}); H&E tiles must be RGB")
    im: Image.Image = opened.convert("RGBA") if mode in {"P", "PA"} else opened
    if im.mode == "RGBA":
        canvas = Image.new("RGB", im.size, (255, 255, 255))
        canvas.paste(im, mask=im.getchannel("A"))
        return canvas
    if im.mode not in {"RGB", "RGBX", "RGBa", "CMYK", "YCbCr", "LAB", "HSV"}:
        raise BadImage(f"unsupported image mode {mode}; H&E tiles must be RGB")
    return im.convert("RGB")
