"""Which slides to process: a folder of slides or a manifest CSV, and per-slide outcomes.

Manifest CSV: a required ``path`` column (relative to the CSV's folder, or absolute) and
optional ``slide_id``, ``patient`` and ``mpp`` columns; other columns are ignored, so a GDC
sample sheet with a ``path`` column added works as is.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TextIO, TypeVar

import openslide

from histobench.datasets.wsi.reader import SLIDE_SUFFIXES
from histobench.plugins.errors import DataError, HistobenchError
from histobench.plugins.labels import patient_from_barcode

T = TypeVar("T")


@dataclass(frozen=True)
class SlideRecord:
    slide_id: str
    path: Path
    patient: str | None = None
    mpp: float | None = None  # overrides the slide's own resolution when set


def _slide_id(path: Path) -> str:
    # TCGA file names are "<barcode>.<uuid>.svs"; keep the whole stem so ids stay unique.
    return path.name[: -len(path.suffix)] if path.suffix else path.name


def _check_unique(records: list[SlideRecord], source: Path) -> list[SlideRecord]:
    seen: dict[str, Path] = {}
    for record in records:
        if record.slide_id in seen:
            raise DataError(
                f"{source}: duplicate slide id {record.slide_id!r} "
                f"({seen[record.slide_id]} and {record.path})"
            )
        seen[record.slide_id] = record.path
    return records


def scan_slide_folder(folder: str | Path, recursive: bool = True) -> list[SlideRecord]:
    """Every slide file under ``folder`` (sorted), patients from TCGA barcodes."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: slide folder not found")
    pattern = "**/*" if recursive else "*"
    paths = sorted(
        p for p in folder.glob(pattern) if p.is_file() and p.suffix.lower() in SLIDE_SUFFIXES
    )
    if not paths:
        raise DataError(f"{folder}: no slide files ({' '.join(SLIDE_SUFFIXES)})")
    records = [SlideRecord(_slide_id(p), p, patient_from_barcode(p.name), None) for p in paths]
    return _check_unique(records, folder)


def _manifest_delimiter(fh: TextIO) -> str:
    """The separator (comma, tab or semicolon) that makes a header column named 'path'."""
    line = fh.readline()
    fh.seek(0)
    header = line.splitlines()[0] if line else ""
    for sep in (",", "\t", ";"):
        if "path" in {c.strip().strip('"').lower() for c in header.split(sep)}:
            return sep
    return ","


def read_manifest(csv_path: str | Path) -> list[SlideRecord]:
    """Slide records from a manifest CSV (see the module docstring for its columns)."""
    csv_path = Path(csv_path)
    try:
        # newline="": the csv module then takes CR, LF and CRLF line endings alike.
        with csv_path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh, delimiter=_manifest_delimiter(fh))
            columns = {name.strip().lower(): name for name in reader.fieldnames or []}
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{csv_path}: cannot read slide manifest: {exc}") from exc
    if "path" not in columns:
        raise DataError(f"{csv_path}: slide manifest has no 'path' column")
    records = []
    for line, row in enumerate(rows, start=2):  # line 1 is the header

        def cell(name: str, row: dict[str, str] = row) -> str:
            return (row.get(columns[name]) or "").strip() if name in columns else ""

        raw_path = cell("path")
        if not raw_path:
            raise DataError(f"{csv_path}: line {line}: empty 'path'")
        path = Path(raw_path)
        if not path.is_absolute():
            path = csv_path.parent / path
        slide_id = cell("slide_id") or _slide_id(path)
        patient = (
            cell("patient") or patient_from_barcode(slide_id) or patient_from_barcode(path.name)
        )
        mpp: float | None = None
        if cell("mpp"):
            try:
                mpp = float(cell("mpp"))
            except ValueError:
                mpp = math.nan
            if not (math.isfinite(mpp) and mpp > 0):
                raise DataError(
                    f"{csv_path}: line {line}: 'mpp' must be a positive number, got {cell('mpp')!r}"
                )
        records.append(SlideRecord(slide_id, path, patient, mpp))
    if not records:
        raise DataError(f"{csv_path}: slide manifest lists no slides")
    return _check_unique(records, csv_path)


def load_slide_records(source: str | Path) -> list[SlideRecord]:
    """A folder of slides or a manifest CSV → slide records."""
    source = Path(source)
    if source.is_dir():
        return scan_slide_folder(source)
    if source.suffix.lower() == ".csv":
        return read_manifest(source)
    raise DataError(f"{source}: expected a folder of slides or a manifest .csv")


@dataclass(frozen=True)
class SlideOutcome(Generic[T]):
    record: SlideRecord
    ok: bool
    result: T | None = None
    reason: str | None = None


# Failures that belong to one slide's data; anything else is a bug and propagates.
SLIDE_FAILURES: tuple[type[BaseException], ...] = (
    HistobenchError,
    OSError,
    openslide.OpenSlideError,
)


def process_slides(
    records: Iterable[SlideRecord],
    func: Callable[[SlideRecord], T],
    on_outcome: Callable[[SlideOutcome[T]], None] | None = None,
) -> list[SlideOutcome[T]]:
    """Apply ``func`` to each slide; a corrupt slide is recorded as failed and the rest go on."""
    outcomes: list[SlideOutcome[T]] = []
    for record in records:
        try:
            outcome = SlideOutcome(record, True, func(record), None)
        except SLIDE_FAILURES as exc:
            outcome = SlideOutcome(record, False, None, str(exc) or type(exc).__name__)
        outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)
    return outcomes
