"""Label and table files as they come: property-based.

Every generated file (any line ending, with or without a BOM, tab/comma/semicolon, sample
barcodes with suffixes, duplicated rows, genes with no value anywhere) either parses to the
table a small reference parser in this file computes, or fails with one line that names the
file (and the line, where one line is to blame).
"""

from __future__ import annotations

import math
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from histobench.datasets.labels.mutations import NON_SILENT, load_mutations
from histobench.plugins.errors import HistobenchError
from histobench.plugins.labels import LabelMatrix, patient_key

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
patients_st = st.lists(
    st.builds(
        lambda site, part: f"TCGA-{site}-{part}",
        st.text(_ALNUM, min_size=2, max_size=2),
        st.text(_ALNUM, min_size=4, max_size=4),
    ),
    min_size=1,
    max_size=8,
    unique=True,
)
# What follows a patient barcode in files: sample, portion, analyte, slide, a file UUID.
suffix_st = st.sampled_from(["", "-01A", "-01Z-00-DX1", "-01A-11D-A10Y-09", "-11A", ".3c61f"])
genes_st = st.lists(
    st.from_regex(r"[A-Z][A-Z0-9]{1,5}", fullmatch=True), min_size=1, max_size=5, unique=True
)


@dataclass(frozen=True)
class Dress:
    """How a file is written: what must not change what it means."""

    newline: str
    bom: bool
    sep: str
    suffix: str

    def write(self, path: Path, lines: list[str]) -> Path:
        text = self.newline.join(lines) + self.newline
        path.write_bytes(("\ufeff" if self.bom else "").encode() + text.encode())
        return path


dress_st = st.builds(
    Dress,
    st.sampled_from(["\n", "\r\n", "\r"]),
    st.booleans(),
    st.sampled_from(["\t", ",", ";"]),
    st.sampled_from([".csv", ".tsv", ".txt", ".dat"]),
)


def reference_lines(blob: bytes) -> list[str]:
    """The reference reader: BOM off, split on any line ending, drop blanks and '#' lines."""
    text = blob.decode("utf-8").removeprefix("\ufeff")
    return [ln for ln in re.split(r"\r\n|\r|\n", text) if ln.strip() and not ln.startswith("#")]


def assert_same(matrix: LabelMatrix, patients: list[str], genes: list[str], values) -> None:
    assert matrix.patients == patients
    assert matrix.genes == genes
    np.testing.assert_array_equal(matrix.values, np.asarray(values, dtype=float).reshape(
        len(patients), len(genes)
    ))  # fmt: skip


def assert_one_line_naming(exc: BaseException, path: Path, line: int | None = None) -> None:
    message = str(exc)
    assert isinstance(exc, HistobenchError), repr(exc)
    assert "\n" not in message and str(path) in message, message
    if line is not None:
        assert f"line {line}" in message, message


def _tmp() -> Path:
    return Path(tempfile.mkdtemp(prefix="hb-labels-"))


# -- wide true/false tables -------------------------------------------------------------------

_FLAGS = {"1": 1.0, "0": 0.0, "true": 1.0, "false": 0.0, "": math.nan, "NA": math.nan}


@st.composite
def wide_tables(draw):
    patients = draw(patients_st)
    genes = draw(genes_st)
    truth = {p: {g: draw(st.sampled_from(sorted(_FLAGS))) for g in genes} for p in patients}
    rows = []
    for p in patients:  # each patient once or more (slides/samples), always consistent
        for _ in range(draw(st.integers(1, 3))):
            rows.append((p + draw(suffix_st), truth[p]))
    rows = draw(st.permutations(rows))
    return draw(dress_st), genes, rows, draw(st.booleans())


@SETTINGS
@given(wide_tables())
def test_wide_tables(case) -> None:
    dress, genes, rows, comment = case
    lines = (["# exported"] if comment else []) + [dress.sep.join(["patient", *genes])]
    lines += [dress.sep.join([sample, *(flags[g] for g in genes)]) for sample, flags in rows]
    path = dress.write(_tmp() / f"wide{dress.suffix}", lines)
    # Reference: patients by barcode; a gene with no value in any row is no gene column.
    by_patient: dict[str, list[dict[str, str]]] = {}
    for sample, flags in rows:
        by_patient.setdefault(patient_key(sample), []).append(flags)
    kept = [g for g in genes if any(_FLAGS[f[g]] == _FLAGS[f[g]] for _, f in rows)]
    patients = sorted(by_patient)
    values = [[_FLAGS[by_patient[p][0][g]] for g in kept] for p in patients]
    try:
        matrix = load_mutations(path)
    except HistobenchError as exc:
        assert not kept, exc  # fails only when no gene has any value
        assert_one_line_naming(exc, path)
        return
    assert_same(matrix, patients, kept, values)


@SETTINGS
@given(wide_tables(), st.data())
def test_wide_table_with_a_bad_cell_names_its_line(case, data) -> None:
    dress, genes, rows, comment = case
    bad_row = data.draw(st.integers(0, len(rows) - 1))
    lines = (["# exported"] if comment else []) + [dress.sep.join(["patient", *genes])]
    for i, (sample, flags) in enumerate(rows):
        cells = [flags[g] for g in genes]
        if i == bad_row:
            cells[0] = "maybe"
        lines.append(dress.sep.join([sample, *cells]))
    path = dress.write(_tmp() / f"wide{dress.suffix}", lines)
    with pytest.raises(HistobenchError) as caught:
        load_mutations(path, genes=genes)
    assert_one_line_naming(caught.value, path, line=bad_row + 2 + int(comment))


# -- long (header) and headerless positives lists ---------------------------------------------


@st.composite
def positives(draw):
    patients = draw(patients_st)
    genes = draw(genes_st)
    pairs = draw(st.lists(st.tuples(st.sampled_from(patients), st.sampled_from(genes)), min_size=1))
    pairs += draw(st.lists(st.sampled_from(pairs), max_size=3))  # duplicated rows
    rows = [(p + draw(suffix_st), g) for p, g in draw(st.permutations(pairs))]
    extra = draw(st.lists(patients_st.map(lambda x: x[0]), max_size=3))  # never positive
    return draw(dress_st), rows, sorted(set(patients) | set(extra))


def _reference_positives(path: Path, header: bool, sep: str, everyone: list[str]):
    lines = reference_lines(path.read_bytes())[int(header) :]
    pairs = {(patient_key(a), b) for a, b in (ln.split(sep) for ln in lines)}
    patients = sorted(set(everyone) | {p for p, _ in pairs})
    genes = sorted({g for _, g in pairs})
    values = np.zeros((len(patients), len(genes)))
    for p, g in pairs:
        values[patients.index(p), genes.index(g)] = 1
    return patients, genes, values


@SETTINGS
@given(positives(), st.booleans())
def test_headerless_positives_lists(case, explicit) -> None:
    dress, rows, everyone = case
    folder = _tmp()
    path = dress.write(folder / f"pos{dress.suffix}", [dress.sep.join(r) for r in rows])
    plist = dress.write(folder / "patients.txt", everyone)
    matrix = load_mutations(
        path, format="positives" if explicit else "auto", patients_file=plist
    )  # detected when unambiguous: every line is (barcode, gene symbol)
    assert_same(matrix, *_reference_positives(path, False, dress.sep, everyone))
    assert matrix.report["format"] == "positives"


@SETTINGS
@given(positives())
def test_long_lists_with_a_header(case) -> None:
    dress, rows, everyone = case
    folder = _tmp()
    lines = [dress.sep.join(["sample", "gene"])] + [dress.sep.join(r) for r in rows]
    path = dress.write(folder / f"long{dress.suffix}", lines)
    plist = dress.write(folder / "patients.txt", ["patient", *everyone])
    matrix = load_mutations(path, format="long", patients_file=plist)
    assert_same(matrix, *_reference_positives(path, True, dress.sep, everyone))


@SETTINGS
@given(positives(), st.data())
def test_a_bad_positives_line_is_named(case, data) -> None:
    dress, rows, everyone = case
    folder = _tmp()
    lines = [dress.sep.join(r) for r in rows]
    where = data.draw(st.integers(0, len(lines)))
    lines.insert(where, dress.sep.join(["TCGA-ZZ-0000", "TP53", "extra"]))
    path = dress.write(folder / f"pos{dress.suffix}", lines)
    plist = dress.write(folder / "patients.txt", everyone)
    with pytest.raises(HistobenchError) as caught:
        load_mutations(path, format="positives", patients_file=plist)
    assert_one_line_naming(caught.value, path, line=where + 1)


# -- GDC MAF ----------------------------------------------------------------------------------

_CLASSES = [*NON_SILENT[:4], "Silent", "Intron", "3'UTR"]


@st.composite
def mafs(draw):
    patients = draw(patients_st)
    genes = draw(genes_st)
    variants = draw(
        st.lists(
            st.tuples(st.sampled_from(genes), st.sampled_from(_CLASSES), st.sampled_from(patients)),
            min_size=1,
        )
    )
    rows = [(g, c, p + draw(suffix_st)) for g, c, p in variants]
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    return Dress(newline, draw(st.booleans()), "\t", ".maf"), rows


@SETTINGS
@given(mafs())
def test_mafs(case) -> None:
    dress, rows = case
    lines = ["#version gdc-1.0.0", "Hugo_Symbol\tEntrez_Gene_Id\tVariant_Classification\t"
             "Tumor_Sample_Barcode"]  # fmt: skip
    lines += [f"{g}\t0\t{c}\t{s}" for g, c, s in rows]
    path = dress.write(_tmp() / "somatic.maf", lines)
    # Reference: every patient in the MAF; mutated where a non-silent variant is.
    patients = sorted({patient_key(s) for _, _, s in rows})
    hits = {(patient_key(s), g) for g, c, s in rows if c in NON_SILENT}
    genes = sorted({g for _, g in hits})
    values = [[float((p, g) in hits) for g in genes] for p in patients]
    assert_same(load_mutations(path), patients, genes, values)


# -- slide manifests, barcodes, cohort files --------------------------------------------------


@SETTINGS
@given(
    dress_st,
    st.lists(
        st.tuples(
            patients_st.map(lambda x: x[0]),
            suffix_st,
            st.one_of(st.none(), st.floats(0.1, 2.0).map(lambda v: round(v, 4))),
        ),
        min_size=1,
        max_size=6,
        unique_by=lambda r: r[0] + r[1],
    ),
)
def test_slide_manifests(dress, rows) -> None:
    from histobench.datasets.wsi.manifest import read_manifest

    folder = _tmp()
    lines = [dress.sep.join(["path", "mpp", "note"])]
    lines += [dress.sep.join([f"{p}{s}.svs", "" if m is None else str(m), "x"]) for p, s, m in rows]
    path = dress.write(folder / "manifest.csv", lines)
    records = read_manifest(path)
    assert [(r.slide_id, r.path, r.patient, r.mpp) for r in records] == [
        (f"{p}{s}", folder / f"{p}{s}.svs", p, m) for p, s, m in rows
    ]


@SETTINGS
@given(patients_st, st.text(max_size=20))
def test_any_suffix_after_a_barcode_gives_its_patient(patients, tail) -> None:
    for patient in patients:
        for sep in "-._ ":
            assert patient_key(f"{patient}{sep}{tail}") == patient
        assert patient_key(patient.lower()) == patient


@SETTINGS
@given(st.text(min_size=1, max_size=12), st.sampled_from(["\n", "\r\n", "\r"]), st.booleans())
def test_cohort_files(name, newline, bom) -> None:
    from histobench.datasets.cohort import read_cohort_file

    folder = _tmp()
    (folder / "features").mkdir()
    (folder / "m.tsv").write_text("patient\tTP53\nTCGA-AA-0001\t1\n")
    quoted = name.replace("\\", "\\\\").replace('"', '\\"')
    lines = ["[cohort]", f'name = "{quoted}"', 'features = "features"', 'mutations = "m.tsv"']
    path = Dress(newline, bom, "\t", ".toml").write(folder / "c.toml", lines)
    try:
        section = read_cohort_file(path)
    except HistobenchError as exc:
        assert_one_line_naming(exc, path)
        plain = name.strip() and not set(name) & {"/", "\\"} and name.strip(".")
        # Refused only for names that could point elsewhere, or that TOML cannot hold.
        assert not plain or any(ord(c) < 32 or ord(c) == 127 for c in name), name
        return
    assert section.name == name
    assert "/" not in name and "\\" not in name and name.strip(".") and name.strip()
