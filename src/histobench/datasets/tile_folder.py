"""Tile folders in the NCT-CRC-HE layout: ``<root>/<CLASS>/<CLASS>-<ID>.tif|png|jpg``.

Scanning is cheap (names and bytes only); a bad image inside a good data set (truncated, not an
image, greyscale) is found when it is decoded, then skipped, recorded and reported.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from pydantic import Field

from histobench.plugins.errors import DataError
from histobench.plugins.specs import Dataset, Item, PluginOptions, SkippedItem

IMAGE_SUFFIXES = {".tif", ".tiff", ".png", ".jpg", ".jpeg"}


class TileFolderOptions(PluginOptions):
    max_per_class: int | None = Field(
        None, ge=1, description="Use at most this many tiles per class (seeded subsample)."
    )
    seed: int = Field(0, description="Seed of the max_per_class subsample.")


def file_fingerprint(path: Path) -> str:
    """Content identity: a renamed or moved tile keeps its cached features."""
    return hashlib.blake2b(path.read_bytes(), digest_size=16).hexdigest()


def looks_like_tile_folder(path: Path) -> bool:
    if not path.is_dir():
        return False
    return any(
        sub.is_dir() and any(f.suffix.lower() in IMAGE_SUFFIXES for f in sub.iterdir())
        for sub in path.iterdir()
    )


def load_tile_folder(source: str, options: TileFolderOptions) -> Dataset:
    root = Path(source).expanduser()
    if not root.exists():
        raise DataError(f"{root}: data set folder not found")
    if not root.is_dir():
        raise DataError(f"{root}: expected a folder of class sub-folders (<root>/<CLASS>/<tile>)")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    items: list[Item] = []
    skipped: list[SkippedItem] = []
    classes: list[str] = []
    rng = np.random.default_rng(options.seed)
    for class_dir in class_dirs:
        files = sorted(f for f in class_dir.iterdir() if f.is_file() and not f.name.startswith("."))
        images = []
        for f in files:
            rel = f"{class_dir.name}/{f.name}"
            if f.suffix.lower() not in IMAGE_SUFFIXES:
                skipped.append(SkippedItem(rel, f"not an image file (suffix '{f.suffix}')"))
            elif f.stat().st_size == 0:
                skipped.append(SkippedItem(rel, "empty file"))
            else:
                images.append(f)
        if not images:
            continue
        if options.max_per_class and len(images) > options.max_per_class:
            keep = np.sort(rng.choice(len(images), options.max_per_class, replace=False))
            images = [images[i] for i in keep]
        classes.append(class_dir.name)
        for f in images:
            items.append(
                Item(
                    item_id=f"{class_dir.name}/{f.name}",
                    path=f,
                    label=class_dir.name,
                    fingerprint=file_fingerprint(f),
                )
            )
    if not items:
        raise DataError(
            f"{root}: no tiles found; expected <root>/<CLASS>/<tile>.tif|png|jpg "
            "(the NCT-CRC-HE layout)"
        )
    if len(classes) < 2:
        raise DataError(f"{root}: only one class folder ('{classes[0]}'); need at least two")
    return Dataset(
        name=root.name, kind="tiles", items=items, root=root, classes=classes, skipped=skipped
    )
