"""Synthetic H&E-like tiles for the demo: nine tissue classes that differ in texture.

Every tile draws its haematoxylin, eosin and background colours from the *same* distribution
whatever its class, so a classifier cannot win on flat colour: it has to see nuclei, fibres, fat
cells, glands and mucus. The images show the machinery working; they are not biology.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

CLASSES = ["ADI", "BACK", "DEB", "LYM", "MUC", "MUS", "NORM", "STR", "TUM"]
RGB = tuple[int, int, int]


def _palette(rng: np.random.Generator) -> tuple[RGB, RGB, RGB]:
    """Haematoxylin (nuclei), eosin (stroma) and background, jittered per tile."""
    h = rng.normal([80, 55, 150], 14).clip(20, 200)
    e = rng.normal([228, 160, 200], 12).clip(120, 255)
    bg = rng.normal([240, 232, 238], 6).clip(200, 255)
    return tuple(int(v) for v in h), tuple(int(v) for v in e), tuple(int(v) for v in bg)  # type: ignore[return-value]


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return tuple(int(round(x * (1 - t) + y * t)) for x, y in zip(a, b, strict=True))  # type: ignore[return-value]


def _nuclei(
    draw: ImageDraw.ImageDraw,
    rng: np.random.Generator,
    n: int,
    r: tuple[float, float],
    colour: RGB,
    size: int,
    elong: float = 1.0,
    angle: float | None = None,
) -> None:
    for _ in range(n):
        x, y = rng.uniform(0, size, 2)
        rad = rng.uniform(*r)
        a = angle if angle is not None else rng.uniform(0, math.pi)
        rx, ry = rad * elong, rad / elong
        # A rotated ellipse as a polygon, so elongated nuclei follow the fibre direction.
        pts = [
            (
                x + rx * math.cos(t) * math.cos(a) - ry * math.sin(t) * math.sin(a),
                y + rx * math.cos(t) * math.sin(a) + ry * math.sin(t) * math.cos(a),
            )
            for t in np.linspace(0, 2 * math.pi, 14, endpoint=False)
        ]
        draw.polygon(pts, fill=_mix(colour, (20, 10, 40), rng.uniform(0, 0.3)))


def _fibres(
    draw: ImageDraw.ImageDraw,
    rng: np.random.Generator,
    n: int,
    colour: RGB,
    size: int,
    angle: float | None,
    wavy: float,
    width: tuple[int, int],
) -> None:
    for _ in range(n):
        a = (angle if angle is not None else rng.uniform(0, math.pi)) + rng.normal(0, 0.08)
        x, y = rng.uniform(-20, size + 20, 2)
        length = rng.uniform(60, 240)
        phase, freq = rng.uniform(0, 2 * math.pi), rng.uniform(0.03, 0.08)
        pts = []
        for s in np.linspace(-length / 2, length / 2, 24):
            off = wavy * math.sin(freq * s + phase)
            pts.append(
                (x + s * math.cos(a) - off * math.sin(a), y + s * math.sin(a) + off * math.cos(a))
            )
        draw.line(
            pts,
            fill=_mix(colour, (255, 255, 255), rng.uniform(0, 0.35)),
            width=int(rng.integers(*width)),
        )


def _adi(img, draw, rng, h, e, bg, size):
    img.paste(_mix(e, bg, 0.3), (0, 0, size, size))
    for _ in range(int(rng.integers(10, 18))):
        x, y = rng.uniform(0, size, 2)
        r = rng.uniform(22, 42)
        draw.ellipse(
            (x - r, y - r, x + r, y + r), fill=_mix(bg, (255, 255, 255), 0.6), outline=e, width=2
        )
    _nuclei(draw, rng, int(rng.integers(2, 6)), (2, 3.5), h, size, elong=2.0)


def _back(img, draw, rng, h, e, bg, size):
    img.paste(_mix(bg, (200, 200, 200), rng.uniform(0, 0.4)), (0, 0, size, size))
    for _ in range(int(rng.integers(0, 6))):
        x, y = rng.uniform(0, size, 2)
        draw.point((x, y), fill=_mix(h, bg, 0.6))


def _deb(img, draw, rng, h, e, bg, size):
    img.paste(_mix(e, bg, 0.55), (0, 0, size, size))
    for _ in range(int(rng.integers(60, 110))):
        x, y = rng.uniform(0, size, 2)
        pts = [(x + rng.normal(0, 5), y + rng.normal(0, 5)) for _ in range(5)]
        draw.polygon(pts, fill=_mix(h if rng.random() < 0.5 else e, bg, rng.uniform(0, 0.5)))


def _lym(img, draw, rng, h, e, bg, size):
    img.paste(_mix(e, bg, 0.5), (0, 0, size, size))
    _nuclei(draw, rng, int(rng.integers(260, 360)), (3.0, 4.5), h, size)


def _muc(img, draw, rng, h, e, bg, size):
    base = _mix(_mix(h, e, 0.55), bg, 0.65)
    img.paste(base, (0, 0, size, size))
    _fibres(draw, rng, 20, _mix(h, bg, 0.45), size, None, wavy=12, width=(4, 9))
    _nuclei(draw, rng, int(rng.integers(0, 5)), (3, 5), h, size)


def _mus(img, draw, rng, h, e, bg, size):
    angle = rng.uniform(0, math.pi)
    img.paste(_mix(e, bg, 0.15), (0, 0, size, size))
    _fibres(draw, rng, 45, _mix(e, (150, 40, 90), 0.25), size, angle, wavy=1.5, width=(3, 6))
    _nuclei(draw, rng, int(rng.integers(25, 40)), (2.5, 3.5), h, size, elong=3.0, angle=angle)


def _norm(img, draw, rng, h, e, bg, size):
    img.paste(_mix(e, bg, 0.35), (0, 0, size, size))
    for _ in range(int(rng.integers(2, 5))):
        cx, cy = rng.uniform(20, size - 20, 2)
        r = rng.uniform(22, 40)
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=_mix(bg, (255, 255, 255), 0.5))
        for t in np.linspace(0, 2 * math.pi, int(2 * math.pi * r / 7), endpoint=False):
            x, y = cx + (r + 5) * math.cos(t), cy + (r + 5) * math.sin(t)
            draw.ellipse((x - 3.5, y - 3.5, x + 3.5, y + 3.5), fill=h)


def _str(img, draw, rng, h, e, bg, size):
    img.paste(_mix(e, bg, 0.45), (0, 0, size, size))
    _fibres(draw, rng, 35, _mix(e, (170, 60, 110), 0.15), size, None, wavy=9, width=(2, 4))
    _nuclei(draw, rng, int(rng.integers(8, 16)), (2, 3), h, size, elong=3.0)


def _tum(img, draw, rng, h, e, bg, size):
    img.paste(_mix(e, h, 0.25), (0, 0, size, size))
    _nuclei(
        draw, rng, int(rng.integers(90, 140)), (6, 10), _mix(h, (40, 20, 80), 0.2), size, elong=1.4
    )


_DRAW: dict[str, Callable[..., None]] = {
    "ADI": _adi,
    "BACK": _back,
    "DEB": _deb,
    "LYM": _lym,
    "MUC": _muc,
    "MUS": _mus,
    "NORM": _norm,
    "STR": _str,
    "TUM": _tum,
}


def synthetic_tile(cls: str, rng: np.random.Generator, size: int = 224) -> Image.Image:
    """One H&E-like tile of class ``cls``: texture, blur and sensor noise."""
    h, e, bg = _palette(rng)
    img = Image.new("RGB", (size, size), bg)
    draw = ImageDraw.Draw(img)
    _DRAW[cls](img, draw, rng, h, e, bg, size)
    img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.6, 1.2)))
    arr = np.asarray(img, dtype=np.float32) + rng.normal(0, 4, (size, size, 3))
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8))
