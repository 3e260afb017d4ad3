"""Expression labels: a wide matrix (either orientation) or a folder of GDC STAR-counts files.

Returns a patient × gene :class:`LabelMatrix` of transformed values (``log2(x + 1)`` by default)
with NaN where a value is missing, and a report of the orientation detected, the samples
dropped by type, and the duplicate samples averaged per patient.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from histobench.datasets.labels.common import (
    MISSING,
    first_examples,
    leading_comment_lines,
    read_table,
)
from histobench.plugins.errors import ConfigError, DataError
from histobench.plugins.labels import LabelMatrix, is_barcode, patient_key, sample_type

Orientation = Literal["auto", "genes-by-samples", "samples-by-genes"]
Transform = Literal["log2p1", "none"]
STAR_COLUMNS = ("gene_id", "gene_name", "gene_type", "unstranded", "tpm_unstranded")
# GDC's STAR files start with summary rows (N_unmapped, N_multimapping, N_noFeature,
# N_ambiguous) that are read counts, not genes.
_STAR_SUMMARY_PREFIX = "N_"
_SAMPLE_SHEET_GLOB = "gdc_sample_sheet*.tsv"


def load_expression(
    path: str | Path,
    *,
    orientation: Orientation = "auto",
    transform: Transform = "log2p1",
    value_column: str = "tpm_unstranded",
    sample_types: Sequence[str] | None = ("01",),
    sample_sheet: str | Path | None = None,
    genes: Sequence[str] | None = None,
) -> LabelMatrix:
    """Read an expression matrix or a STAR-counts folder (see the module docstring).

    ``sample_types``: TCGA sample type codes to keep (``"01"`` primary tumour; ``"11"`` would
    be normal tissue); samples whose id carries no type are kept. None keeps all.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: expression file or folder not found")
    if path.is_dir():
        samples, gene_ids, raw, report = _read_star_folder(
            path, value_column, Path(sample_sheet) if sample_sheet else None, genes
        )
    else:
        samples, gene_ids, raw, report = _read_matrix(path, orientation, genes)
    values = _transform(raw, transform, path, samples, gene_ids)
    report["transform"] = "log2(x + 1)" if transform == "log2p1" else "none"
    return _to_patients(path, samples, gene_ids, values, sample_types, report)


# -- wide matrix ----------------------------------------------------------------------------


def _numeric(frame: pd.DataFrame, path: Path, axis_name: str) -> np.ndarray:
    """Strings → floats; missing markers → NaN; anything else names its column."""
    out = np.empty(frame.shape)
    for j, column in enumerate(frame.columns):
        cells = frame[column].str.strip()
        missing = cells.str.lower().isin(MISSING)
        numbers = pd.to_numeric(cells.where(~missing, "nan"), errors="coerce")
        bad = numbers.isna() & ~missing
        if bad.any():
            row = frame.index[int(np.flatnonzero(bad.to_numpy())[0])]
            raise DataError(
                f"{path}: {axis_name} {column!r}: non-numeric value "
                f"{cells[bad].iloc[0]!r} (row {row!r})"
            )
        out[:, j] = numbers.to_numpy(dtype=float)
    return out


def _read_matrix(
    path: Path, orientation: Orientation, genes: Sequence[str] | None
) -> tuple[list[str], list[str], np.ndarray, dict[str, Any]]:
    frame = read_table(path, "expression")
    if frame.shape[1] < 2 or frame.empty:
        raise DataError(f"{path}: expression matrix needs an id column and at least one value")
    id_col = frame.columns[0]
    if "gene_name" in frame.columns:  # TCGAbiolinks / GDC exports: symbols beside Ensembl ids
        id_col = "gene_name"
    frame = frame.set_index(frame[id_col].str.strip()).drop(columns=[id_col])
    report: dict[str, Any] = {"format": "matrix", "id_column": id_col}
    col_barcodes = np.mean([is_barcode(c) for c in frame.columns])
    row_barcodes = float(np.mean([is_barcode(r) for r in frame.index]))
    wanted = set(genes or [])
    if orientation == "auto":
        if col_barcodes >= 0.5 > row_barcodes:
            orientation, why = "genes-by-samples", "column headers are TCGA barcodes"
        elif row_barcodes >= 0.5 > col_barcodes:
            orientation, why = "samples-by-genes", "row ids are TCGA barcodes"
        elif wanted and len(wanted & set(frame.index)) > len(wanted & set(frame.columns)):
            orientation, why = "genes-by-samples", "requested genes are row ids"
        elif wanted and len(wanted & set(frame.columns)) > 0:
            orientation, why = "samples-by-genes", "requested genes are column headers"
        else:
            raise ConfigError(
                f"{path}: cannot tell whether rows are genes or samples (no TCGA barcodes); "
                "set expression_orientation"
            )
        report["orientation_detected_from"] = why
    report["orientation"] = orientation
    if orientation == "genes-by-samples":
        # Annotation columns (gene_type, Ensembl ids, …) sit beside the samples: with barcode
        # headers, every other column is annotation.
        sample_cols = (
            [c for c in frame.columns if is_barcode(c)] if col_barcodes > 0 else list(frame.columns)
        )
        dropped = [c for c in frame.columns if c not in sample_cols]
        block = frame[sample_cols]
        if wanted:
            block = block[block.index.isin(wanted)]
        values = _numeric(block, path, "column").T  # samples × genes
        samples, gene_ids = list(block.columns), list(block.index)
    else:
        gene_cols = list(frame.columns)
        if wanted:
            gene_cols = [c for c in gene_cols if c in wanted]
        # Non-numeric annotation columns (sample type, project) are dropped, not parsed.
        dropped = [c for c in frame.columns if c not in gene_cols]
        block = frame[gene_cols]
        values = _numeric(block, path, "column")
        samples, gene_ids = list(block.index), list(block.columns)
    report["annotation_columns_dropped"] = dropped[:20]
    return samples, gene_ids, values, report


# -- STAR-counts folder ---------------------------------------------------------------------


def _star_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and p.name.lower().endswith((".tsv", ".tsv.gz"))
        and not p.name.lower().startswith("gdc_sample_sheet")
    )


def _sample_sheet(folder: Path, sheet: Path | None) -> dict[str, str]:
    """File name → sample barcode from a GDC sample sheet (columns 'File Name', 'Sample ID')."""
    if sheet is None:
        found = sorted(folder.glob(_SAMPLE_SHEET_GLOB))
        if not found:
            return {}
        sheet = found[0]
    table = read_table(sheet, "sample sheet")
    for needed in ("File Name", "Sample ID"):
        if needed not in table.columns:
            raise DataError(f"{sheet}: GDC sample sheet without a {needed!r} column")
    # A file of several samples lists them comma-separated; its first is the tumour sample.
    return {
        name.strip(): sample.split(",")[0].strip()
        for name, sample in zip(table["File Name"], table["Sample ID"], strict=True)
    }


def _read_star_file(file: Path, value_column: str) -> pd.Series:
    try:
        frame = pd.read_csv(
            file,
            sep="\t",
            skiprows=leading_comment_lines(file),
            usecols=lambda c: c in ("gene_id", "gene_name", value_column),
            dtype={"gene_id": str, "gene_name": str},
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{file}: cannot parse STAR-counts file: {exc}") from exc
    for needed in ("gene_id", value_column):
        if needed not in frame.columns:
            raise DataError(f"{file}: STAR-counts file without a {needed!r} column")
    frame = frame[~frame["gene_id"].str.startswith(_STAR_SUMMARY_PREFIX)]
    names = frame["gene_name"] if "gene_name" in frame.columns else frame["gene_id"]
    values = pd.to_numeric(frame[value_column], errors="coerce")
    if values.isna().any() and frame[value_column].notna().all():
        raise DataError(f"{file}: column {value_column!r}: non-numeric values")
    # Gene symbols repeat for a few Ensembl ids (PAR_Y copies, readthroughs): TPM is additive,
    # so a symbol's value is the sum over its ids.
    return values.groupby(names.to_numpy()).sum(min_count=1)


def _read_star_folder(
    folder: Path, value_column: str, sheet: Path | None, genes: Sequence[str] | None
) -> tuple[list[str], list[str], np.ndarray, dict[str, Any]]:
    files = _star_files(folder)
    if not files:
        raise DataError(f"{folder}: no STAR-counts .tsv files in the folder")
    mapping = _sample_sheet(folder, sheet)
    samples: list[str] = []
    series: list[pd.Series] = []
    unmapped: list[str] = []
    for file in files:
        sample = mapping.get(file.name) or next(
            (part for part in (file.name, file.parent.name) if is_barcode(part)), None
        )
        if sample is None:
            unmapped.append(file.name)
            continue
        values = _read_star_file(file, value_column)
        if genes:
            values = values[values.index.isin(set(genes))]
        samples.append(sample.split(".")[0])
        series.append(values)
    if not series:
        raise DataError(
            f"{folder}: no STAR-counts file could be matched to a TCGA sample: add the GDC "
            f"sample sheet ({_SAMPLE_SHEET_GLOB}) or set 'sample_sheet'"
        )
    table = pd.concat(series, axis=1, keys=range(len(series)))  # genes × files, union of genes
    report: dict[str, Any] = {
        "format": "star-counts folder",
        "value_column": value_column,
        "files": len(files),
        "files_without_sample": len(unmapped),
        "files_without_sample_examples": unmapped[:5],
        "duplicate_gene_symbols": "summed (TPM is additive)",
    }
    return samples, [str(g) for g in table.index], table.to_numpy(float).T, report


# -- shared steps ---------------------------------------------------------------------------


def _transform(
    raw: np.ndarray, transform: Transform, path: Path, samples: list[str], genes: list[str]
) -> np.ndarray:
    if np.isinf(raw).any():
        i, j = np.argwhere(np.isinf(raw))[0]
        raise DataError(
            f"{path}: gene {genes[j]!r}, sample {samples[i]!r}: infinite expression value"
        )
    if transform == "none":
        return raw
    with np.errstate(invalid="ignore"):
        negative = raw < 0
    if negative.any():
        i, j = np.argwhere(negative)[0]
        raise DataError(
            f"{path}: gene {genes[j]!r}, sample {samples[i]!r}: negative expression value "
            f"{raw[i, j]:g} cannot be log2(x + 1)-transformed; set expression_transform = "
            '"none" for values already on a log scale'
        )
    return np.log2(raw + 1.0)


def _to_patients(
    path: Path,
    samples: list[str],
    genes: list[str],
    values: np.ndarray,
    sample_types: Sequence[str] | None,
    report: dict[str, Any],
) -> LabelMatrix:
    if len(set(genes)) != len(genes):
        dup = next(g for g in genes if genes.count(g) > 1)
        raise DataError(f"{path}: gene {dup!r} appears more than once")
    keep = np.ones(len(samples), bool)
    if sample_types is not None:
        types = [sample_type(s) for s in samples]
        keep = np.array([t is None or t in sample_types for t in types])
        report["sample_types_kept"] = list(sample_types)
        report["samples_dropped_by_type"] = int((~keep).sum())
        report["samples_dropped_by_type_examples"] = [
            s for s, k in zip(samples, keep, strict=True) if not k
        ][:5]
    kept = [s for s, k in zip(samples, keep, strict=True) if k]
    if not kept:
        raise DataError(
            f"{path}: no sample of type {', '.join(sample_types or [])} (TCGA sample codes)"
        )
    values = values[keep]
    keys = [patient_key(s) for s in kept]
    patients = sorted(set(keys))
    index = {p: i for i, p in enumerate(patients)}
    rows = np.array([index[k] for k in keys])
    # Duplicate samples of a patient (re-sequenced aliquots, several portions) are averaged
    # on the transformed scale, ignoring missing values.
    finite = np.isfinite(values)
    sums = np.zeros((len(patients), values.shape[1]))
    counts = np.zeros_like(sums)
    np.add.at(sums, rows, np.where(finite, values, 0.0))
    np.add.at(counts, rows, finite)
    with np.errstate(invalid="ignore", divide="ignore"):
        merged = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    multi = {p for p, n in Counter(keys).items() if n > 1}
    report.update(
        samples=len(samples),
        patients=len(patients),
        genes=len(genes),
        patients_with_duplicate_samples=len(multi),
        patients_with_duplicate_samples_examples=first_examples(multi),
        duplicate_samples="averaged per patient after the transform",
        missing_values=int((~np.isfinite(merged)).sum()),
    )
    return LabelMatrix("expression", path, patients, list(genes), merged, report)
