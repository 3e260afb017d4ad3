"""Decoding tiles into RGB, with a clear reason when a file cannot be used."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, UnidentifiedImageError

GREYSCALE_MODES = {"1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F"}


class BadImage(Exception):
    """An image file that cannot serve as an H&E tile; the message is the recorded reason."""


def open_rgb(path: Path | str) -> Image.Image:
    """Decode fully (truncation shows only then) and return RGB.

    RGBA and palette images are composited on white, as slide scanners render background;
    greyscale is refused because H&E features need colour.
    """
    try:
        with Image.open(path) as opened:
            opened.load()
            mode = opened.mode
            if mode in GREYSCALE_MODES:
                raise BadImage(f"greyscale image (mode {mode}); H&E tiles must be RGB")
            im: Image.Image = opened.convert("RGBA") if mode == "P" else opened
            if im.mode == "RGBA":
                canvas = Image.new("RGB", im.size, (255, 255, 255))
                canvas.paste(im, mask=im.getchannel("A"))
                return canvas
            return im.convert("RGB")
    except UnidentifiedImageError as exc:
        raise BadImage("not a readable image") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise BadImage(f"cannot decode image ({str(exc).splitlines()[0][:120]})") from exc
