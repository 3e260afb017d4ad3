"""Mutation labels: GDC MAF, wide true/false tables, a long positives list with a header, or a
headerless two-column (sample, gene) positives list; the last two with a list of all patients.

Every reader returns a patient × gene :class:`LabelMatrix` of 1 / 0 / NaN plus a report of
what was detected and merged. Patients are 12-character TCGA barcodes where the input holds
barcodes (slide, sample or aliquot barcodes all collapse to their patient).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from histobench.datasets.labels.common import (
    MISSING,
    first_examples,
    open_text,
    read_id_list,
    read_table,
    separator,
)
from histobench.plugins.errors import ConfigError, DataError
from histobench.plugins.labels import LabelMatrix, is_barcode, patient_key

MutationFormat = Literal["auto", "maf", "wide", "long", "positives"]

# GDC's non-silent set (maftools' default "Variant_Classification" filter): what counts as
# "mutated" unless the cohort file says otherwise.
NON_SILENT: tuple[str, ...] = (
    "Missense_Mutation",
    "Nonsense_Mutation",
    "Frame_Shift_Del",
    "Frame_Shift_Ins",
    "In_Frame_Del",
    "In_Frame_Ins",
    "Splice_Site",
    "Translation_Start_Site",
    "Nonstop_Mutation",
)
MAF_REQUIRED = ("Hugo_Symbol", "Variant_Classification", "Tumor_Sample_Barcode")
MAF_SUFFIXES = (".maf", ".maf.gz")

_TRUE = {"true", "t", "1", "1.0", "yes", "y", "mutated", "mut"}
_FALSE = {"false", "f", "0", "0.0", "no", "n", "wt", "wildtype", "wild-type"}
# Patient columns by name, in order of preference, when no column holds TCGA barcodes.
_PATIENT_NAMES = (
    "patient",
    "patient_id",
    "case_submitter_id",
    "bcr_patient_barcode",
    "submitter_id",
)
_GENE_NAMES = ("gene", "hugo_symbol", "symbol", "gene_symbol", "gene_name")
_GENE_LIKE = re.compile(r"^[A-Z][A-Z0-9.\-]*$")  # HGNC symbols are upper case


def _is_maf_path(path: Path) -> bool:
    name = path.name.lower()
    return name.endswith(MAF_SUFFIXES)


def load_mutations(
    path: str | Path,
    *,
    format: MutationFormat = "auto",
    variant_classifications: Sequence[str] = NON_SILENT,
    patient_column: str | None = None,
    gene_column: str | None = None,
    patients_file: str | Path | None = None,
    genes: Sequence[str] | None = None,
) -> LabelMatrix:
    """Read mutation labels in any supported layout (see the module docstring)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: mutation file not found")
    patients = Path(patients_file) if patients_file is not None else None
    if format == "auto":
        format = _detect_format(path, gene_column)
    if format == "maf":
        return read_maf(
            path, variant_classifications=variant_classifications, patients_file=patients
        )
    if format in ("long", "positives"):
        if patients is None:
            raise ConfigError(
                f"{path}: a list of positives needs 'patients_file' (the full patient "
                "list; negatives are the patients not listed)"
            )
        if format == "positives":
            return read_positives(path, patients)
        return read_long_mutations(path, patients, patient_column, gene_column)
    return read_wide_mutations(path, patient_column=patient_column, genes=genes)


def _detect_format(path: Path, gene_column: str | None) -> MutationFormat:
    if path.is_dir() or _is_maf_path(path):
        return "maf"
    if gene_column is None and _looks_like_positives(path):
        return "positives"
    header = list(read_table(path, "mutation").columns)
    if all(c in header for c in MAF_REQUIRED[:2]):
        return "maf"
    lowered = {c.lower() for c in header}
    if gene_column in header or (lowered & set(_GENE_NAMES) and len(header) <= 4):
        return "long"
    return "wide"


# -- MAF ------------------------------------------------------------------------------------


def _maf_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    files = sorted(p for p in path.rglob("*") if p.is_file() and _is_maf_path(p))
    if not files:
        raise DataError(f"{path}: no .maf or .maf.gz files in the folder")
    return files


def read_maf(
    path: Path,
    *,
    variant_classifications: Sequence[str] = NON_SILENT,
    patients_file: Path | None = None,
) -> LabelMatrix:
    """A GDC (masked somatic) MAF, or a folder of them, → patient × gene 1/0.

    A patient is mutated in a gene when it has a variant of a counted classification there;
    every patient in the MAF (any variant, counted or not) and in ``patients_file`` is a
    negative for the genes it is not mutated in.
    """
    counted = set(variant_classifications)
    if not counted:
        raise ConfigError(f"{path}: variant_classifications is empty: nothing would count")
    frames = []
    for file in _maf_files(path):
        frame = read_table(file, "MAF")
        missing = [c for c in MAF_REQUIRED if c not in frame.columns]
        if missing:
            raise DataError(
                f"{file}: not a MAF: missing required column(s) {', '.join(missing)} "
                f"(GDC MAF columns: {', '.join(MAF_REQUIRED)}, …)"
            )
        frames.append(frame[list(MAF_REQUIRED)])
    maf = pd.concat(frames, ignore_index=True)
    barcodes = maf["Tumor_Sample_Barcode"].str.strip()
    if (barcodes == "").any():
        raise DataError(f"{path}: column Tumor_Sample_Barcode: empty barcode(s)")
    maf = maf.assign(patient=barcodes.map(patient_key), gene=maf["Hugo_Symbol"].str.strip())
    all_patients = set(maf["patient"])
    extra_patients: set[str] = set()
    if patients_file is not None:
        extra_patients = {patient_key(p) for p in read_id_list(patients_file, "patient list")}
        all_patients |= extra_patients
    keep = maf["Variant_Classification"].isin(counted)
    positives = maf[keep]
    genes = sorted(set(positives["gene"]))
    patients = sorted(all_patients)
    p_index = {p: i for i, p in enumerate(patients)}
    g_index = {g: j for j, g in enumerate(genes)}
    values = np.zeros((len(patients), len(genes)))
    # Integer indices also when no variant counts (an empty map() result is float).
    rows = positives["patient"].map(p_index).to_numpy(dtype=np.int64)
    cols = positives["gene"].map(g_index).to_numpy(dtype=np.int64)
    values[rows, cols] = 1.0
    classes = maf["Variant_Classification"].value_counts()
    report: dict[str, Any] = {
        "format": "maf",
        "files": len(frames),
        "variant_classifications_counted": sorted(counted),
        "variants_counted": int(keep.sum()),
        "variants_ignored": {str(k): int(v) for k, v in classes.items() if k not in counted},
        "patients": len(patients),
        "patients_from_patients_file_only": len(extra_patients - set(maf["patient"])),
        "negatives": "patients in the MAF or the patient list without a counted variant",
        "non_tcga_barcodes": int((~barcodes.map(is_barcode)).sum()),
    }
    return LabelMatrix("mutation", path, patients, genes, values, report)


# -- wide tables ------------------------------------------------------------------------------


def _parse_flag(value: str) -> float:
    text = value.strip().lower()
    if text in _TRUE:
        return 1.0
    if text in _FALSE:
        return 0.0
    if text in MISSING:
        return np.nan
    raise ValueError(value)


def _is_flag_column(column: pd.Series) -> bool:
    seen = {v.strip().lower() for v in column.unique()}
    seen -= MISSING
    # Auto-detection is strict (true/false, 0/1): "yes"/"no" columns are often clinical.
    return bool(seen) and seen <= {"true", "false", "0", "1", "0.0", "1.0"}


def find_patient_column(frame: pd.DataFrame, path: Path, patient_column: str | None) -> str:
    """The named column, else the one holding patient-level TCGA barcodes, else any barcodes.

    A UUID column such as GDC's ``case_id`` is never chosen by itself: UUIDs are not
    barcodes, and several TCGA id columns (slide, sample, case) all map to the same patient.
    """
    if patient_column is not None:
        if patient_column not in frame.columns:
            raise ConfigError(
                f"{path}: patient_column {patient_column!r} is not a column "
                f"(columns: {', '.join(list(frame.columns)[:12])}…)"
            )
        return patient_column
    best: tuple[int, int, str] | None = None
    for position, name in enumerate(frame.columns):
        values = frame[name].str.strip()
        values = values[values != ""]
        if values.empty:
            continue
        barcodes = values.map(is_barcode)
        if barcodes.mean() < 0.9:
            continue
        # Prefer a column that *is* the patient barcode (12 characters), then the first one.
        exact = int((values.str.len() == 12).mean() >= 0.9)
        rank = (-exact, position, name)
        if best is None or rank < best:
            best = rank
    if best is not None:
        return best[2]
    for name in frame.columns:
        if name.lower() in _PATIENT_NAMES:
            return name
    raise ConfigError(
        f"{path}: no column holds TCGA barcodes; name the patient column with 'patient_column'"
    )


def read_wide_mutations(
    path: Path, *, patient_column: str | None = None, genes: Sequence[str] | None = None
) -> LabelMatrix:
    """One column per gene (true/false or 0/1), one row per patient, slide or sample.

    Rows of one patient are merged; rows that disagree (mutated and not) are an error, since
    a patient's somatic status cannot depend on which slide was scanned.
    """
    frame = read_table(path, "mutation")
    if frame.empty:
        raise DataError(f"{path}: mutation table has no rows")
    pcol = find_patient_column(frame, path, patient_column)
    patients_raw = frame[pcol].str.strip()
    if (patients_raw == "").any():
        line = int(np.flatnonzero((patients_raw == "").to_numpy())[0]) + frame.attrs["first_line"]
        raise DataError(f"{path}: column {pcol!r}: empty patient id on line {line}")
    report: dict[str, Any] = {"format": "wide", "patient_column": pcol}
    if genes is not None:
        gene_cols = [g for g in genes if g in frame.columns]
        report["requested_genes_absent"] = [g for g in genes if g not in frame.columns]
    else:
        gene_cols = [
            c
            for c in frame.columns
            if c != pcol and _GENE_LIKE.match(c) and _is_flag_column(frame[c])
        ]
        report["gene_columns_detected"] = gene_cols
    if not gene_cols:
        raise DataError(
            f"{path}: no gene columns with true/false or 0/1 values"
            + (f" among the requested genes {', '.join(genes)}" if genes else "")
        )
    flags = np.empty((len(frame), len(gene_cols)))
    for j, gene in enumerate(gene_cols):
        for i, value in enumerate(frame[gene].to_numpy()):
            try:
                flags[i, j] = _parse_flag(value)
            except ValueError:
                raise DataError(
                    f"{path}: column {gene!r}: value {value!r} on line {i + frame.attrs['first_line']} is not "
                    "true/false or 0/1"
                ) from None
    keys = patients_raw.map(patient_key).to_numpy()
    patients = sorted(set(keys))
    index = {p: i for i, p in enumerate(patients)}
    rows = np.array([index[k] for k in keys])
    n = len(patients)
    # Per patient: how many rows say mutated / not mutated (NaN rows say nothing).
    pos = np.zeros((n, len(gene_cols)))
    neg = np.zeros((n, len(gene_cols)))
    np.add.at(pos, rows, flags == 1.0)
    np.add.at(neg, rows, flags == 0.0)
    conflict = (pos > 0) & (neg > 0)
    if conflict.any():
        i, j = np.argwhere(conflict)[0]
        raise DataError(
            f"{path}: column {gene_cols[j]!r}: patient {patients[i]} has rows that disagree "
            f"(mutated and not mutated); {int(conflict.sum())} such patient-gene pairs"
        )
    values = np.where(pos > 0, 1.0, np.where(neg > 0, 0.0, np.nan))
    report.update(
        rows=len(frame),
        patients=n,
        rows_merged_into_patients=len(frame) - n,
        row_level="patient" if len(frame) == n else "slide/sample (several rows per patient)",
        missing_values=int(np.isnan(values).sum()),
    )
    return LabelMatrix("mutation", path, patients, list(gene_cols), values, report)


# -- long positives list ----------------------------------------------------------------------


def read_long_mutations(
    path: Path,
    patients_file: Path,
    patient_column: str | None = None,
    gene_column: str | None = None,
) -> LabelMatrix:
    """Rows of (patient, gene) positives; the patient list gives everyone (negatives = rest)."""
    frame = read_table(path, "mutation")
    if gene_column is None:
        gene_column = next((c for c in frame.columns if c.lower() in _GENE_NAMES), None)
        if gene_column is None:
            raise ConfigError(
                f"{path}: no gene column ({', '.join(_GENE_NAMES)}); set 'gene_column'"
            )
    elif gene_column not in frame.columns:
        raise ConfigError(f"{path}: gene_column {gene_column!r} is not a column")
    pcol = find_patient_column(frame.drop(columns=[gene_column]), path, patient_column)
    everyone = {patient_key(p) for p in read_id_list(patients_file, "patient list")}
    pairs = frame[[pcol, gene_column]].apply(lambda s: s.str.strip())
    pairs = pairs[(pairs[pcol] != "") & (pairs[gene_column] != "")]
    keys = pairs[pcol].map(patient_key)
    outside = set(keys) - everyone
    patients = sorted(everyone | set(keys))
    genes = sorted(set(pairs[gene_column]))
    p_index = {p: i for i, p in enumerate(patients)}
    g_index = {g: j for j, g in enumerate(genes)}
    values = np.zeros((len(patients), len(genes)))
    values[keys.map(p_index).to_numpy(int), pairs[gene_column].map(g_index).to_numpy(int)] = 1.0
    report = {
        "format": "long",
        "patient_column": pcol,
        "gene_column": gene_column,
        "positives": len(pairs),
        "patients": len(patients),
        "patients_file": str(patients_file),
        "positive_patients_not_in_patients_file": len(outside),
        "positive_patients_not_in_patients_file_examples": first_examples(outside),
        "negatives": "patients in the patient list not listed as positive for the gene",
    }
    if not len(pairs):
        raise DataError(f"{path}: no (patient, gene) rows")
    return LabelMatrix("mutation", path, patients, genes, values, report)


# -- headerless (sample, gene) positives ------------------------------------------------------


def _positive_rows(path: Path) -> list[tuple[int, list[str]]]:
    """(line number, fields) of every content line; any line ending, separator or BOM."""
    sep = separator(path)
    rows = []
    with open_text(path) as fh:
        for number, line in enumerate(fh, start=1):
            text = line.strip()
            if text and not text.startswith("#"):
                rows.append((number, [f.strip().strip('"') for f in text.split(sep)]))
    return rows


def _looks_like_positives(path: Path) -> bool:
    """Unambiguous only: every content line is (TCGA barcode, gene symbol), no header."""
    try:
        rows = _positive_rows(path)
    except (DataError, UnicodeDecodeError, OSError):
        return False
    return bool(rows) and all(
        len(fields) == 2 and is_barcode(fields[0]) and bool(_GENE_LIKE.match(fields[1]))
        for _, fields in rows
    )


def read_positives(path: Path, patients_file: Path) -> LabelMatrix:
    """Lines of ``sample<sep>gene``, no header (one header line naming a gene column is
    tolerated); samples reduce to patients, repeated pairs count once, negatives are the
    patients of ``patients_file`` not listed for a gene."""
    try:
        rows = _positive_rows(path)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason})") from exc
    if rows and rows[0][1][-1].lower() in _GENE_NAMES and not is_barcode(rows[0][1][0]):
        rows = rows[1:]
    pairs: set[tuple[str, str]] = set()
    for number, fields in rows:
        if len(fields) != 2 or not fields[0] or not fields[1]:
            raise DataError(
                f"{path}: line {number}: expected two fields (sample, gene), got {len(fields)}"
                + ("" if len(fields) != 2 else " with an empty one")
            )
        pairs.add((patient_key(fields[0]), fields[1]))
    if not pairs:
        raise DataError(f"{path}: no (sample, gene) lines")
    everyone = {patient_key(p) for p in read_id_list(patients_file, "patient list")}
    listed = {p for p, _ in pairs}
    patients = sorted(everyone | listed)
    genes = sorted({g for _, g in pairs})
    p_index = {p: i for i, p in enumerate(patients)}
    g_index = {g: j for j, g in enumerate(genes)}
    values = np.zeros((len(patients), len(genes)))
    for patient, gene in pairs:
        values[p_index[patient], g_index[gene]] = 1.0
    outside = listed - everyone
    report = {
        "format": "positives",
        "positives": len(pairs),
        "lines": len(rows),
        "duplicate_lines_merged": len(rows) - len(pairs),
        "patients": len(patients),
        "patients_file": str(patients_file),
        "positive_patients_not_in_patients_file": len(outside),
        "positive_patients_not_in_patients_file_examples": first_examples(outside),
        "negatives": "patients in the patient list not listed as positive for the gene",
    }
    return LabelMatrix("mutation", path, patients, genes, values, report)
