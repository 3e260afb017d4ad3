"""``bench data fetch tcga-luad-*`` from a local GDC: slides, MAFs, STAR-counts, luad.toml."""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import pytest

from histobench.datasets.cohort import read_cohort_file
from histobench.datasets.labels.expression import load_expression
from histobench.datasets.labels.mutations import load_mutations
from tests.conftest import assert_one_line_error
from tests.datasets.fetch.conftest import FAST_FLAGS
from tests.datasets.fetch.fake_services import FakeServices, Fault

LUAD = {"cases.project.project_id": "TCGA-LUAD", "access": "open"}
SLIDES = {
    # file id: (file name, experimental strategy)
    "s1": ("TCGA-05-4244-01A-01-TS1.aaaa.svs", "Tissue Slide"),
    "s2": ("TCGA-05-4249-01A-01-BS1.bbbb.svs", "Tissue Slide"),
    "s3": ("TCGA-05-4250-01A-01-TS1.cccc.svs", "Tissue Slide"),
    "d1": ("TCGA-05-4244-01Z-00-DX1.dddd.svs", "Diagnostic Slide"),
}
PATIENTS = ("TCGA-05-4244", "TCGA-05-4249")


def _maf(barcode: str, genes: list[str]) -> bytes:
    head = ["Hugo_Symbol", "Variant_Classification", "Tumor_Sample_Barcode"]
    lines = ["#version gdc-1.0.0", "\t".join(head)]
    lines += [f"{g}\tMissense_Mutation\t{barcode}" for g in genes]
    lines.append(f"TTN\tSilent\t{barcode}")
    return gzip.compress(("\n".join(lines) + "\n").encode())


def _star(tp53: float) -> bytes:
    rows = ["# gene-model: GENCODE v36",
            "gene_id\tgene_name\tgene_type\tunstranded\ttpm_unstranded",
            "N_unmapped\t\t\t100\t", "ENSG00000141510.18\tTP53\tprotein_coding\t50\t"
            f"{tp53}", "ENSG00000133703.13\tKRAS\tprotein_coding\t20\t3.0"]  # fmt: skip
    return ("\n".join(rows) + "\n").encode()


@pytest.fixture
def gdc(services: FakeServices, shared_data: Path) -> FakeServices:
    slide = (shared_data / "wsi" / "CMU-1-Small-Region.svs").read_bytes()  # a real SVS
    for file_id, (name, strategy) in SLIDES.items():
        patient = name[:12]
        attrs = {**LUAD, "data_type": "Slide Image", "experimental_strategy": strategy}
        services.add_gdc_file(file_id, name, slide, attrs, cases=[{"submitter_id": patient}])
    mutation = {**LUAD, "data_category": "Simple Nucleotide Variation",
                "data_type": "Masked Somatic Mutation"}  # fmt: skip
    expression = {**LUAD, "data_category": "Transcriptome Profiling",
                  "data_type": "Gene Expression Quantification",
                  "analysis.workflow_type": "STAR - Counts"}  # fmt: skip
    for i, (patient, genes) in enumerate(zip(PATIENTS, (["TP53", "KRAS"], ["EGFR"]), strict=True)):
        barcode = f"{patient}-01A-11D-A24D-09"
        services.add_gdc_file(f"m{i}", f"m{i}.wxs.aliquot_ensemble_masked.maf.gz",
                              _maf(barcode, genes), mutation,
                              cases=[{"submitter_id": patient}])  # fmt: skip
        services.add_gdc_file(f"e{i}", f"e{i}.rna_seq.augmented_star_gene_counts.tsv",
                              _star(7.0 + i), expression,
                              cases=[{"submitter_id": patient, "samples": [
                                  {"submitter_id": f"{patient}-01A",
                                   "sample_type": "Primary Tumor"}]}])  # fmt: skip
    return services


def _strategies(services: FakeServices) -> list[list[str]]:
    return [
        [c["content"]["value"][0] for c in q["filters"]["content"]
         if c["content"]["field"] == "experimental_strategy"]
        for q in services.gdc_queries
    ]  # fmt: skip


def test_slides_mutations_expression_make_a_ready_cohort(cli, gdc, hb_home):
    root = hb_home / "data" / "tcga-luad"
    code, out, err = cli("data", "fetch", "tcga-luad-slides", "--max-slides", "2", *FAST_FLAGS)
    assert code == 0, err
    assert _strategies(gdc) == [["Tissue Slide"]]  # frozen sections: the study's default
    with (root / "slides.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["patient"] for r in rows] == list(PATIENTS)
    assert all((root / r["path"]).is_file() for r in rows)
    assert not (root / "slides" / SLIDES["s3"][0]).exists()  # --max-slides 2
    assert "luad.toml is written once" in out

    code, out, err = cli("data", "fetch", "tcga-luad-mutations", *FAST_FLAGS)
    assert code == 0, err
    assert "cohort file" in out
    section = read_cohort_file(root / "luad.toml")  # validated by the cohort data set itself
    assert section.slides == root / "slides.csv" and section.expression is None
    mutations = load_mutations(section.mutations)
    assert mutations.patients == list(PATIENTS)
    assert mutations.values[mutations.patients.index(PATIENTS[1]), mutations.genes.index("EGFR")]

    code, out, err = cli("data", "fetch", "tcga-luad-expression", *FAST_FLAGS)
    assert code == 0, err
    section = read_cohort_file(root / "luad.toml")
    expression = load_expression(section.expression, genes=["TP53"])
    assert expression.patients == list(PATIENTS)  # mapped through the written sample sheet
    log2_tpm_plus_1 = [3.0, 3.169925]  # log2(7 + 1), log2(8 + 1)
    assert expression.values[:, 0] == pytest.approx(log2_tpm_plus_1, abs=1e-5)

    for name in ("tcga-luad-slides", "tcga-luad-mutations", "tcga-luad-expression"):
        code, out, err = cli("data", "verify", name)
        assert code == 0 and "match their checksums" in out, err
    code, out, _ = cli("data", "list", "--json")
    status = {row["name"]: row["status"] for row in json.loads(out)}
    assert status["tcga-luad-slides"] == "present (2 files)"


def test_ffpe_asks_for_diagnostic_slides(cli, gdc, hb_home):
    code, out, err = cli("data", "fetch", "tcga-luad-slides", "--ffpe", *FAST_FLAGS)
    assert code == 0, err
    assert _strategies(gdc) == [["Diagnostic Slide"]]
    assert (hb_home / "data" / "tcga-luad" / "slides" / SLIDES["d1"][0]).is_file()


def test_a_gdc_manifest_picks_the_files_without_a_query(cli, gdc, tmp_path, hb_home):
    name = SLIDES["s2"][0]
    manifest = tmp_path / "gdc_manifest.txt"
    md5 = next(h["md5sum"] for h in gdc.gdc_hits if h["file_id"] == "s2")
    size = next(h["file_size"] for h in gdc.gdc_hits if h["file_id"] == "s2")
    manifest.write_text(f"id\tfilename\tmd5\tsize\tstate\ns2\t{name}\t{md5}\t{size}\treleased\n")
    code, out, err = cli("data", "fetch", "tcga-luad-slides", "--manifest", manifest, *FAST_FLAGS)
    assert code == 0, err
    assert gdc.gdc_queries == []
    assert gdc.content_requests("/data/s2") == [""]
    assert (hb_home / "data" / "tcga-luad" / "slides" / name).is_file()


def test_dry_run_lists_files_and_bytes_without_downloading(cli, gdc, hb_home):
    code, out, err = cli("data", "fetch", "tcga-luad-slides", "--dry-run")
    assert code == 0, err
    assert "3 slide images" in out and SLIDES["s1"][0] in out and "MB" in out
    assert not any(method == "GET" for method, _, _ in gdc.log)


def test_a_partial_run_is_reported_and_a_rerun_finishes(cli, gdc, hb_home):
    gdc.faults["/data/s2"] = [Fault("status", 404)]
    code, _, err = cli("data", "fetch", "tcga-luad-slides", *FAST_FLAGS)
    assert code == 1
    assert_one_line_error(err, "2 of 3 file(s) complete", SLIDES["s2"][0], "HTTP 404", "again")
    root = hb_home / "data" / "tcga-luad"
    assert not (root / "slides.csv").exists()  # nothing half-done is offered as a cohort
    code, _, err = cli("data", "fetch", "tcga-luad-slides", *FAST_FLAGS)
    assert code == 0, err
    assert gdc.content_requests("/data/s1") == [""]  # the complete file was not fetched again
    assert (root / "slides.csv").is_file()


def test_an_unsafe_file_name_from_the_server_is_refused(cli, services, hb_home):
    attrs = {**LUAD, "data_type": "Slide Image", "experimental_strategy": "Tissue Slide"}
    services.add_gdc_file("x", "../../escape.svs", b"bytes", attrs)
    code, _, err = cli("data", "fetch", "tcga-luad-slides", *FAST_FLAGS)
    assert code == 1
    assert_one_line_error(err, "refused unsafe file name")
    assert not list(hb_home.rglob("escape.svs"))


def test_slide_flags_are_refused_for_other_sets(cli, services):
    code, _, err = cli("data", "fetch", "tcga-luad-mutations", "--frozen")
    assert code == 2
    assert_one_line_error(err, "--frozen only apply to tcga-luad-slides")
    assert services.log == []


def test_a_malformed_manifest_is_a_one_line_error(cli, services, tmp_path):
    manifest = tmp_path / "m.txt"
    manifest.write_text("uuid,name\nx,y\n")
    code, _, err = cli("data", "fetch", "tcga-luad-slides", "--manifest", manifest)
    assert code == 2
    assert_one_line_error(err, str(manifest), "not a GDC manifest")
    assert services.log == []


def test_an_unknown_data_set_is_a_one_line_error(cli):
    code, _, err = cli("data", "fetch", "tcga-brca-slides")
    assert code == 2
    assert_one_line_error(err, "tcga-brca-slides")
