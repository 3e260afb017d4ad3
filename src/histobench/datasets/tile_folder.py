"""Tile folders in the NCT-CRC-HE layout: ``<root>/<CLASS>/<CLASS>-<ID>.tif|png|jpg``.

Scanning is cheap (names and bytes only); a bad image inside a good data set (truncated, not an
image, greyscale) is found when it is decoded, then skipped, recorded and reported.

Patients: a tile whose file name holds a TCGA barcode (``…TCGA-AA-3562-01Z…png``) belongs to
that patient and its tissue-source site. Other tiles have no patient unless a patients map
(``--patients MAP.csv``: ``item,patient[,site]``) names one: NCT-CRC-HE-100K and CRC-VAL-HE-7K
ship no patient ids, so their tiles are split as independent items unless a map is given.
"""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import replace
from pathlib import Path

import numpy as np
from pydantic import Field

from histobench.plugins.errors import DataError
from histobench.plugins.labels import patient_from_barcode, site_from_barcode
from histobench.plugins.specs import Dataset, Item, PluginOptions, SkippedItem

IMAGE_SUFFIXES = {".tif", ".tiff", ".png", ".jpg", ".jpeg"}


class TileFolderOptions(PluginOptions):
    max_per_class: int | None = Field(
        None, ge=1, description="Use at most this many tiles per class (seeded subsample)."
    )
    seed: int = Field(0, description="Seed of the max_per_class subsample.")
    patients_map: Path | None = Field(
        None,
        description="CSV mapping tiles to patients: columns item (the file name or the path "
        "under the data set root), patient, and optionally site. Tiles it does not name are "
        "skipped unless their file name holds a TCGA barcode.",
    )


# A TCGA patient barcode anywhere in a file name (tile names often prefix or suffix it).
_BARCODE = re.compile(r"(?<![A-Z0-9])TCGA-[A-Z0-9]{2}-[A-Z0-9]{4}(?![A-Z0-9])", re.IGNORECASE)


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
                _with_barcode(
                    Item(
                        item_id=f"{class_dir.name}/{f.name}",
                        path=f,
                        label=class_dir.name,
                        fingerprint=file_fingerprint(f),
                    )
                )
            )
    if not items:
        raise DataError(
            f"{root}: no tiles found; expected <root>/<CLASS>/<tile>.tif|png|jpg "
            "(the NCT-CRC-HE layout)"
        )
    if len(classes) < 2:
        raise DataError(f"{root}: only one class folder ('{classes[0]}'); need at least two")
    if options.patients_map is not None:
        items, unmapped = apply_patients_map(items, options.patients_map)
        skipped.extend(unmapped)
    return Dataset(
        name=root.name, kind="tiles", items=items, root=root, classes=classes, skipped=skipped
    )


def _with_barcode(item: Item) -> Item:
    """Patient and tissue-source site from a TCGA barcode in the file name, where there is one."""
    match = _BARCODE.search(item.path.name)
    if match is None:
        return item
    patient = patient_from_barcode(match.group(0))
    return replace(item, patient=patient, meta={**item.meta, "site": site_from_barcode(match[0])})


def read_patients_map(path: Path) -> list[tuple[int, str, str, str | None]]:
    """Rows of ``item,patient[,site]`` as (line, item, patient, site); errors name the line."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"{path}: patients map not found")
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            columns = [c.strip() for c in reader.fieldnames or []]
            if not {"item", "patient"} <= set(columns):
                raise DataError(
                    f"{path}: a patients map needs the columns item,patient[,site] "
                    f"(found: {','.join(columns) or 'nothing'})"
                )
            rows = []
            for line, raw in enumerate(reader, start=2):
                row = {str(k).strip(): (v or "").strip() for k, v in raw.items() if k}
                if not row["item"] or not row["patient"]:
                    raise DataError(f"{path}: line {line}: empty item or patient")
                rows.append((line, row["item"], row["patient"], row.get("site") or None))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: not a readable CSV file ({exc})") from exc
    return rows


def apply_patients_map(items: list[Item], path: Path) -> tuple[list[Item], list[SkippedItem]]:
    """Set each tile's patient (and site) from the map; tiles it does not name and whose name
    holds no barcode are skipped and reported (splitting them freely could leak a patient)."""
    by_path = {it.item_id: i for i, it in enumerate(items)}
    by_name: dict[str, list[int]] = {}
    for i, it in enumerate(items):
        by_name.setdefault(it.path.name, []).append(i)
    assigned: dict[int, tuple[int, str, str | None]] = {}
    for line, key, patient, site in read_patients_map(path):
        matches = [by_path[key]] if key in by_path else by_name.get(Path(key).name, [])
        if len(matches) > 1:
            names = ", ".join(items[i].item_id for i in matches[:3])
            raise DataError(
                f"{path}: line {line}: '{key}' matches {len(matches)} tiles ({names}); "
                "give the path under the data set root"
            )
        for i in matches:
            previous = assigned.get(i)
            if previous is not None and previous[1:] != (patient, site):
                raise DataError(
                    f"{path}: line {line}: {items[i].item_id} is already mapped to patient "
                    f"'{previous[1]}' (line {previous[0]})"
                )
            assigned[i] = (line, patient, site)
    if not assigned:
        raise DataError(
            f"{path}: names none of the {len(items)} tiles (item is the file name or the "
            f"path under the data set root, e.g. '{items[0].item_id}')"
        )
    out, unmapped = [], []
    for i, item in enumerate(items):
        if i in assigned:
            _, patient, site = assigned[i]
            site = site or site_from_barcode(patient) or item.meta.get("site")
            out.append(replace(item, patient=patient, meta={**item.meta, "site": site}))
        elif item.patient is not None:
            out.append(item)  # its file name's barcode says whose it is
        else:
            unmapped.append(SkippedItem(item.item_id, f"not in the patients map {path.name}"))
    return out, unmapped
