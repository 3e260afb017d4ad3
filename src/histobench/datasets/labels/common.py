"""What the label readers share: the tidy label matrix, patient keys and table reading."""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from histobench.plugins.errors import DataError
from histobench.plugins.labels import is_barcode

# Cells that mean "no value" in the tables TCGA tools write.
MISSING = {"", "na", "nan", "n/a", "none", "null", "--", "'--", "not reported"}


def open_text(path: Path) -> io.TextIOBase:
    """A text handle on a plain or gzip-compressed file (GDC ships MAFs as ``.maf.gz``)."""
    try:
        if path.suffix.lower() == ".gz":
            return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig")
        return open(path, encoding="utf-8-sig")  # noqa: SIM115 - returned to the caller
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc}") from exc


SEPARATORS = ("\t", ",", ";")


def first_content_line(path: Path) -> str:
    """The first line that is neither blank nor a '#' comment (any line ending, BOM dropped)."""
    with open_text(path) as fh:
        return next((ln for ln in fh if ln.strip() and not ln.startswith("#")), "")


def separator(path: Path) -> str:
    """Tab, comma or semicolon, read from the first content line.

    The suffix (.csv comma; .tsv/.txt/.maf/.tab tab) wins when its separator occurs there at
    all; otherwise the most frequent of the three (a European ".csv" is ';'-separated).
    """
    name = path.name.lower().removesuffix(".gz")
    default = (
        ","
        if name.endswith(".csv")
        else "\t"
        if name.endswith((".tsv", ".txt", ".maf", ".tab"))
        else None
    )
    first = first_content_line(path)
    counts = {sep: first.count(sep) for sep in SEPARATORS}
    if default is not None and counts[default] > 0:
        return default
    best = max(SEPARATORS, key=lambda sep: counts[sep])
    return best if counts[best] > 0 else (default or "\t")


def leading_comment_lines(path: Path) -> int:
    """How many lines at the top start with '#' (MAF ``#version``, STAR ``# gene-model``)."""
    count = 0
    with open_text(path) as fh:
        for line in fh:
            if not line.startswith("#"):
                break
            count += 1
    return count


def read_table(path: Path, what: str, usecols: Any = None) -> pd.DataFrame:
    """Every cell as a string (no silent type guessing), leading '#' lines skipped."""
    if not path.is_file():
        raise DataError(f"{path}: {what} file not found")
    try:
        frame = pd.read_csv(
            path,
            sep=separator(path),
            dtype=str,
            keep_default_na=False,
            skiprows=leading_comment_lines(path),
            usecols=usecols,
            low_memory=False,
            encoding="utf-8-sig",
            skip_blank_lines=True,
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DataError(f"{path}: cannot parse {what} table: {detail}") from exc
    except ValueError as exc:  # usecols naming absent columns
        raise DataError(f"{path}: {what} table: {exc}") from exc
    frame.columns = [str(c).strip() for c in frame.columns]
    # For messages: the file line of the first data row (after '#' lines and the header).
    frame.attrs["first_line"] = leading_comment_lines(path) + 2
    return frame


def read_id_list(path: Path, what: str) -> list[str]:
    """One id per line (first field of a CSV/TSV line); a header line is dropped."""
    if not path.is_file():
        raise DataError(f"{path}: {what} file not found")
    ids: list[str] = []
    with open_text(path) as fh:
        for line in fh:
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            ids.append(text.replace("\t", ",").replace(";", ",").split(",")[0].strip().strip('"'))
    if ids and not is_barcode(ids[0]) and any(is_barcode(i) for i in ids[1:]):
        ids = ids[1:]  # a header such as "patient" above barcodes
    if not ids:
        raise DataError(f"{path}: {what} file lists nothing")
    return ids


def first_examples(values: Iterable[str], n: int = 5) -> list[str]:
    return sorted(values)[:n]
