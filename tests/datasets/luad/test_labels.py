"""Label parsing on real and GDC-shaped files: the shared wide CSV, MAFs, STAR counts, matrices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from histobench.datasets.labels import load_expression, load_mutations
from histobench.plugins.errors import ConfigError, DataError
from tests.datasets.luad.helpers import star_text, write_maf

# -- the real wide table: slide rows, true/false columns, case_id is a UUID ------------------


def test_real_wide_csv_slide_rows_become_patients(real_labels: Path) -> None:
    m = load_mutations(real_labels)
    raw = pd.read_csv(real_labels)
    # Independent reference: pandas' own bool parsing, any() over a patient's slides.
    ref = raw.groupby("case_submitter_id")[["KRAS", "TP53", "STK11", "EGFR"]].any()
    assert m.report["format"] == "wide"
    assert m.report["patient_column"] == "case_submitter_id"  # not the UUID case_id
    assert len(m.patients) == raw["case_submitter_id"].nunique() == 521
    assert m.report["rows_merged_into_patients"] == len(raw) - 521
    assert m.patients == sorted(ref.index)
    for gene in ("KRAS", "TP53", "STK11", "EGFR"):
        np.testing.assert_array_equal(m.values[:, m.genes.index(gene)], ref[gene].to_numpy(float))
    # Booleans that are not genes (is_ffpe, prior_treatment) are not taken as gene columns.
    assert "is_ffpe" not in m.genes and "prior_treatment" not in m.genes
    row = m.patients.index("TCGA-55-8507")
    assert m.values[row, m.genes.index("TP53")] == 1 and m.values[row, m.genes.index("KRAS")] == 0
    assert m.values[:, m.genes.index("LKB1")].sum() == 0  # a real gene with one class


def test_real_wide_csv_requested_genes_and_absent_ones(real_labels: Path) -> None:
    m = load_mutations(real_labels, genes=["STK11", "NOPE1"])
    assert m.genes == ["STK11"]
    assert m.report["requested_genes_absent"] == ["NOPE1"]


def test_patient_column_by_name_and_misspelt(tmp_path: Path) -> None:
    table = tmp_path / "w.csv"
    table.write_text("id,GENE1\nP1,1\nP2,0\nP3,\n")
    m = load_mutations(table, patient_column="id")
    assert m.patients == ["P1", "P2", "P3"]
    np.testing.assert_array_equal(m.values[:, 0], [1, 0, np.nan])
    with pytest.raises(ConfigError, match=r"w\.csv: patient_column 'ids' is not a column"):
        load_mutations(table, patient_column="ids")
    with pytest.raises(ConfigError, match="no column holds TCGA barcodes"):
        load_mutations(table)


def test_wide_conflicting_rows_and_bad_values_name_file_and_column(tmp_path: Path) -> None:
    conflict = tmp_path / "c.csv"
    conflict.write_text("slide,KRAS\nTCGA-05-4244-01Z-00-DX1,true\nTCGA-05-4244-01A-01-TS1,false\n")
    with pytest.raises(DataError, match=r"c\.csv: column 'KRAS': patient TCGA-05-4244 has rows"):
        load_mutations(conflict)
    bad = tmp_path / "b.tsv"
    bad.write_text("patient\tKRAS\tTP53\nTCGA-05-4244\ttrue\tmaybe\n")
    with pytest.raises(DataError, match=r"b\.tsv: column 'TP53': value 'maybe' on line 2"):
        load_mutations(bad, genes=["KRAS", "TP53"])


# -- MAF ------------------------------------------------------------------------------------

MAF_ROWS = [
    ("KRAS", "Missense_Mutation", "TCGA-05-4244-01A-01D-1105-08"),
    ("KRAS", "Silent", "TCGA-05-4249-01A-01D-1105-08"),  # silent: not counted
    ("TP53", "Nonsense_Mutation", "TCGA-05-4249-01A-01D-1105-08"),
    ("TP53", "Splice_Site", "TCGA-05-4249-01A-01D-1105-08"),  # a second hit, same patient
    ("EGFR", "In_Frame_Del", "TCGA-44-2655-01A-01D-A273-08"),
    ("TTN", "3'UTR", "TCGA-49-4487-01A-21D-1855-08"),  # only non-counted variants
]


@pytest.mark.parametrize("name", ["m.maf", "m.maf.gz"])
def test_maf_non_silent_default(tmp_path: Path, name: str) -> None:
    m = load_mutations(write_maf(tmp_path / name, MAF_ROWS))
    assert m.report["format"] == "maf"
    assert m.patients == ["TCGA-05-4244", "TCGA-05-4249", "TCGA-44-2655", "TCGA-49-4487"]
    assert m.genes == ["EGFR", "KRAS", "TP53"]
    expected = np.array([[0, 1, 0], [0, 0, 1], [1, 0, 0], [0, 0, 0]], float)
    np.testing.assert_array_equal(m.values, expected)
    assert m.report["variants_ignored"] == {"Silent": 1, "3'UTR": 1}
    assert "Missense_Mutation" in m.report["variant_classifications_counted"]


def test_maf_recorded_option_and_folder_and_patient_list(tmp_path: Path) -> None:
    folder = tmp_path / "mafs"
    (folder / "a").mkdir(parents=True)
    (folder / "b").mkdir()
    write_maf(folder / "a" / "one.maf.gz", MAF_ROWS[:2])
    write_maf(folder / "b" / "two.maf", MAF_ROWS[2:])
    patients = tmp_path / "patients.txt"
    patients.write_text("patient\nTCGA-05-4244\nTCGA-99-0001\n")
    m = load_mutations(
        folder, variant_classifications=["Missense_Mutation", "Silent"], patients_file=patients
    )
    assert m.report["files"] == 2
    assert "TCGA-99-0001" in m.patients and m.report["patients_from_patients_file_only"] == 1
    kras = m.values[:, m.genes.index("KRAS")]
    assert kras[m.patients.index("TCGA-05-4249")] == 1  # Silent counts when asked to
    assert "TP53" not in m.genes  # Nonsense/Splice no longer count


def test_maf_missing_required_column(tmp_path: Path) -> None:
    path = write_maf(tmp_path / "x.maf", MAF_ROWS, drop="Variant_Classification")
    with pytest.raises(
        DataError,
        match=r"x\.maf: not a MAF: missing required column\(s\) "
        "Variant_Classification",
    ):
        load_mutations(path)


def test_long_positives_list_with_patient_list(tmp_path: Path) -> None:
    positives = tmp_path / "pos.csv"
    positives.write_text("patient,gene\nTCGA-05-4244,KRAS\nTCGA-05-4249-01A,TP53\n")
    patients = tmp_path / "all.txt"
    patients.write_text("TCGA-05-4244\nTCGA-05-4249\nTCGA-44-2655\n")
    m = load_mutations(positives, patients_file=patients)
    assert m.report["format"] == "long"
    assert m.patients == ["TCGA-05-4244", "TCGA-05-4249", "TCGA-44-2655"]
    np.testing.assert_array_equal(m.values, [[1, 0], [0, 1], [0, 0]])
    with pytest.raises(ConfigError, match="needs 'patients_file'"):
        load_mutations(positives)


# -- expression: STAR-counts folder ---------------------------------------------------------


def _star_folder(tmp_path: Path) -> Path:
    """GDC download layout: <file uuid>/<uuid>.rna_seq.augmented_star_gene_counts.tsv + sheet."""
    folder = tmp_path / "star"
    files = {
        "a1": ("TCGA-05-4244-01A", {"CD3G": 10.0, "CD53": 3.0, "FGF7": 0.0}),
        "b2": ("TCGA-05-4249-01A", {"CD3G": 4.0, "CD53": 1.0, "FGF7": 7.0}),
        "c3": ("TCGA-05-4249-01B", {"CD3G": 12.0, "CD53": 3.0, "FGF7": 1.0}),  # 2nd sample
        "d4": ("TCGA-05-4249-11A", {"CD3G": 99.0, "CD53": 99.0, "FGF7": 99.0}),  # normal tissue
    }
    sheet = [
        "File ID\tFile Name\tData Category\tData Type\tProject ID\tCase ID\tSample ID\tSample Type"
    ]
    for uid, (sample, genes) in files.items():
        name = f"{uid}-uuid.rna_seq.augmented_star_gene_counts.tsv"
        (folder / uid).mkdir(parents=True)
        dup = ("CD53", 2.0) if uid == "a1" else None
        (folder / uid / name).write_text(star_text(genes, duplicate=dup))
        sheet.append(
            f"{uid}\t{name}\tTranscriptome Profiling\tGene Expression Quantification\t"
            f"TCGA-LUAD\t{sample[:12]}\t{sample}\tPrimary Tumor"
        )
    (folder / "gdc_sample_sheet.2024-01-01.tsv").write_text("\n".join(sheet) + "\n")
    return folder


def test_star_counts_folder(tmp_path: Path) -> None:
    e = load_expression(_star_folder(tmp_path))
    assert e.report["format"] == "star-counts folder"
    assert e.patients == ["TCGA-05-4244", "TCGA-05-4249"]
    assert sorted(e.genes) == ["CD3G", "CD53", "FGF7"]  # N_unmapped etc. are not genes
    value = dict(zip(e.genes, e.values[0], strict=True))
    assert value["CD3G"] == pytest.approx(np.log2(11.0))
    assert value["CD53"] == pytest.approx(np.log2(3.0 + 2.0 + 1))  # PAR_Y copy summed
    second = dict(zip(e.genes, e.values[1], strict=True))
    # Two tumour samples averaged after log2(x+1); the normal-tissue sample dropped.
    assert second["CD3G"] == pytest.approx((np.log2(5.0) + np.log2(13.0)) / 2)
    assert e.report["samples_dropped_by_type"] == 1
    assert e.report["patients_with_duplicate_samples"] == 1


def test_star_counts_without_sample_sheet_is_one_line_error(tmp_path: Path) -> None:
    folder = _star_folder(tmp_path)
    for sheet in folder.glob("gdc_sample_sheet*"):
        sheet.unlink()
    with pytest.raises(DataError, match="no STAR-counts file could be matched"):
        load_expression(folder)


# -- expression: wide matrices ----------------------------------------------------------------


def test_matrix_orientation_detected_both_ways(tmp_path: Path) -> None:
    gs = tmp_path / "gs.tsv"
    gs.write_text(
        "gene_id\tgene_name\tTCGA-05-4244-01A\tTCGA-05-4249-01A\n"
        "ENSG1\tCD3G\t1\t3\nENSG2\tFGF7\t0\t\n"
    )
    a = load_expression(gs)
    assert a.report["orientation"] == "genes-by-samples"
    assert a.genes == ["CD3G", "FGF7"]
    np.testing.assert_allclose(a.values, [[1.0, 0.0], [2.0, np.nan]])
    assert a.report["missing_values"] == 1
    sg = tmp_path / "sg.csv"
    sg.write_text("sample,CD3G,FGF7\nTCGA-05-4244-01A,1,0\nTCGA-05-4249-01A,3,7\n")
    b = load_expression(sg, transform="none")
    assert b.report["orientation"] == "samples-by-genes"
    np.testing.assert_allclose(b.values, [[1, 0], [3, 7]])
    plain = tmp_path / "plain.csv"
    plain.write_text("id,S1,S2\nCD3G,1,2\n")
    with pytest.raises(ConfigError, match="set expression_orientation"):
        load_expression(plain)
    assert load_expression(plain, genes=["CD3G"]).report["orientation"] == "genes-by-samples"


@pytest.mark.parametrize(
    ("cell", "message"),
    [("inf", "infinite expression value"), ("-2", "negative expression value -2")],
)
def test_matrix_bad_values_name_file_gene_and_sample(
    tmp_path: Path, cell: str, message: str
) -> None:
    path = tmp_path / "bad.tsv"
    path.write_text(f"gene\tTCGA-05-4244-01A\tTCGA-05-4249-01A\nCD3G\t1\t{cell}\n")
    with pytest.raises(
        DataError, match=rf"bad\.tsv: gene 'CD3G', sample 'TCGA-05-4249-01A': {message}"
    ):
        load_expression(path)


def test_matrix_negative_allowed_without_transform_and_text_rejected(tmp_path: Path) -> None:
    path = tmp_path / "z.tsv"
    path.write_text("gene\tTCGA-05-4244-01A\tTCGA-05-4249-01A\nCD3G\t-1.5\t0.5\n")
    assert load_expression(path, transform="none").values[:, 0].tolist() == [-1.5, 0.5]
    path.write_text("gene\tTCGA-05-4244-01A\nCD3G\tlots\n")
    with pytest.raises(DataError, match=r"column 'TCGA-05-4244-01A': non-numeric value 'lots'"):
        load_expression(path)
