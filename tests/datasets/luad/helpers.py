"""Writers for GDC-shaped label files and planted-signal feature cohorts (test data only)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np

from histobench.benchmark.h5io import write_slide_features
from histobench.datasets.demo_cohort import MAF_COLUMNS

# The GDC masked-somatic MAF column layout, shared with the demo cohort writer.
MAF_HEADER = MAF_COLUMNS


def maf_text(rows: list[tuple[str, str, str]], drop: str | None = None) -> str:
    """A GDC masked-somatic MAF: ``#version`` line, header, one line per (gene, class, barcode)."""
    header = [c for c in MAF_HEADER if c != drop]
    lines = ["#version gdc-1.0.0", "#filedate 20220101", "\t".join(header)]
    for i, (gene, klass, barcode) in enumerate(rows):
        record = {
            "Hugo_Symbol": gene,
            "Entrez_Gene_Id": "0",
            "Center": "BI",
            "NCBI_Build": "GRCh38",
            "Chromosome": "chr12",
            "Start_Position": str(25245350 + i),
            "End_Position": str(25245350 + i),
            "Strand": "+",
            "Variant_Classification": klass,
            "Variant_Type": "SNP",
            "Reference_Allele": "C",
            "Tumor_Seq_Allele1": "C",
            "Tumor_Seq_Allele2": "A",
            "dbSNP_RS": "",
            "dbSNP_Val_Status": "",
            "Tumor_Sample_Barcode": barcode,
            "Matched_Norm_Sample_Barcode": barcode[:12] + "-10A-01D-A17W-08",
            "HGVSp_Short": "p.G12C",
        }
        lines.append("\t".join(record[c] for c in header))
    return "\n".join(lines) + "\n"


def write_maf(path: Path, rows: list[tuple[str, str, str]], drop: str | None = None) -> Path:
    text = maf_text(rows, drop)
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


STAR_HEADER = (
    "gene_id\tgene_name\tgene_type\tunstranded\tstranded_first\tstranded_second\t"
    "tpm_unstranded\tfpkm_unstranded\tfpkm_uq_unstranded"
)


def star_text(genes: dict[str, float], duplicate: tuple[str, float] | None = None) -> str:
    """A GDC ``augmented_star_gene_counts.tsv``: gene-model line, header, N_ rows, genes."""
    lines = ["# gene-model: GENCODE v36", STAR_HEADER]
    for name in ("N_unmapped", "N_multimapping", "N_noFeature", "N_ambiguous"):
        lines.append(f"{name}\t\t\t{1234567}\t{1200000}\t{1100000}\t\t\t")
    for i, (name, tpm) in enumerate(genes.items()):
        lines.append(
            f"ENSG{i:011d}.1\t{name}\tprotein_coding\t{int(tpm * 10)}\t{int(tpm * 5)}\t"
            f"{int(tpm * 5)}\t{tpm:.4f}\t{tpm / 3:.4f}\t{tpm / 2:.4f}"
        )
    if duplicate is not None:  # a second Ensembl id with the same symbol (a PAR_Y copy)
        name, tpm = duplicate
        lines.append(f"ENSG99999999999.1_PAR_Y\t{name}\tprotein_coding\t0\t0\t0\t{tpm}\t0\t0")
    return "\n".join(lines) + "\n"


def planted_cohort(
    root: Path,
    n_patients: int = 48,
    dim: int = 12,
    seed: int = 0,
    slides_per_patient: int = 1,
) -> dict[str, object]:
    """Per-patient (or per-slide) HDF5 features with planted signal, labels and a cohort TOML.

    Feature 0 carries the mutation of ``PLANT`` (shifted by 1.5 SD in mutated patients); feature
    1 drives the expression of ``GENEA``. ``NULLM`` and ``GENEZ`` are independent of features.
    """
    rng = np.random.default_rng(seed)
    patients = [f"TCGA-T{seed % 10}-{i:04d}" for i in range(n_patients)]
    mutated = rng.permutation(n_patients) < int(0.4 * n_patients)
    null_mutated = rng.random(n_patients) < 0.35
    base = rng.normal(size=(n_patients, dim))
    base[:, 0] += 1.5 * mutated
    signal = base[:, 1]
    feats = root / "features" / "mymodel"
    for i, pid in enumerate(patients):
        for s in range(slides_per_patient):
            rows = base[i] + rng.normal(0, 0.3, size=(6 + s, dim))
            name = f"{pid}-01Z-00-DX{s + 1}" if slides_per_patient > 1 else pid
            write_slide_features(feats / f"{name}.h5", rows, np.zeros((len(rows), 2)))
    rows = [("TTN", "Silent", f"{p}-01A-11D-A000-08") for p in patients]
    rows += [
        ("PLANT", "Missense_Mutation", f"{p}-01A-11D-A000-08")
        for p, m in zip(patients, mutated, strict=True)
        if m
    ]
    rows += [
        ("NULLM", "Nonsense_Mutation", f"{p}-01A-11D-A000-08")
        for p, m in zip(patients, null_mutated, strict=True)
        if m
    ]
    write_maf(root / "mutations.maf", rows)
    log_a = np.clip(6 + 1.5 * signal + rng.normal(0, 0.4, n_patients), 0.05, None)
    log_z = np.clip(6 + rng.normal(0, 1, n_patients), 0.05, None)
    samples = [f"{p}-01A" for p in patients]
    tpm = 2 ** np.stack([log_a, log_z]) - 1  # log2(tpm + 1) = planted value
    lines = ["gene_name\t" + "\t".join(samples)]
    for name, row in zip(["GENEA", "GENEZ"], tpm, strict=True):
        lines.append(name + "\t" + "\t".join(f"{v:.6f}" for v in row))
    (root / "expression.tsv").write_text("\n".join(lines) + "\n")
    toml = root / "cohort.toml"
    toml.write_text(
        "\n".join(
            [
                "[cohort]",
                'name = "planted"',
                'features = "features/mymodel"',
                'mutations = "mutations.maf"',
                'expression = "expression.tsv"',
                f"genes = {json.dumps(['PLANT', 'NULLM', 'GENEA', 'GENEZ'])}",
            ]
        )
        + "\n"
    )
    return {
        "toml": toml,
        "patients": patients,
        "mutated": mutated,
        "log_a": log_a,
        "features": base,
    }
