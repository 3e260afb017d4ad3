"""The demo LUAD cohort: synthetic patients, pyramidal slides and GDC-style label files.

About 24 patients with 1–2 small pyramidal TIFF slides each (0.5 µm/px, 1,120 px square: a
5 × 5 grid of 224-px tissue patches, some of them bare glass), a MAF, an expression matrix and
a cohort TOML, written once under ``HISTOBENCH_HOME/data/demo/luad-cohort``. Two signals are
planted so the machinery has something to find; the numbers show the machinery, not biology:

* the fraction of lymphocyte-like patches drives the immune genes' expression (CD3G strongly,
  CD53 more weakly); FGF7 and RAC2 are noise;
* a nuclear-size change (tumour patches drawn at 0.7 scale and enlarged, so nuclei are ~1.4×
  larger) marks STK11-mutated patients; TP53 and KRAS mutations are random.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
from PIL import Image
from pydantic import Field

from histobench.benchmark import home
from histobench.plugins.specs import Dataset, PluginOptions

GENERATOR_VERSION = 2
SEED = 2024
PATCH = 224
GRID = 5  # patches per side: slides are GRID * PATCH pixels square at level 0
MPP = 0.5
LEVELS = 3
BANK = 12  # patches drawn per tissue kind (x 8 with flips and rotations)
IMMUNE_GENES = {"CD3G": 1.0, "CD53": 0.5}  # gene → strength of the lymphocyte signal
NULL_EXPRESSION_GENES = ["FGF7", "RAC2"]
PLANTED_MUTATION = "STK11"
NULL_MUTATIONS = {"TP53": 0.4, "KRAS": 0.3}  # gene → mutation rate, independent of the image
MAF_COLUMNS = [
    "Hugo_Symbol",
    "Entrez_Gene_Id",
    "Center",
    "NCBI_Build",
    "Chromosome",
    "Start_Position",
    "End_Position",
    "Strand",
    "Variant_Classification",
    "Variant_Type",
    "Reference_Allele",
    "Tumor_Seq_Allele1",
    "Tumor_Seq_Allele2",
    "dbSNP_RS",
    "Tumor_Sample_Barcode",
    "Matched_Norm_Sample_Barcode",
]


class DemoCohortOptions(PluginOptions):
    patients: int = Field(24, ge=8, le=200, description="Synthetic patients to generate.")


def _patch(kind: str, rng: np.random.Generator) -> np.ndarray:
    from histobench.datasets.synthetic import synthetic_tile

    if kind == "TUM-big":
        # Drawn small and enlarged: every structure, nuclei included, is 1/0.7 ≈ 1.4× larger.
        tile = synthetic_tile("TUM", rng, size=int(PATCH * 0.7))
        tile = tile.resize((PATCH, PATCH), Image.Resampling.BICUBIC)
    else:
        tile = synthetic_tile(kind, rng, size=PATCH)
    # Quantised to 64 levels per channel: invisible at this scale, and the sensor-like noise
    # then compresses about 2x better, which keeps the demo slides small on disk.
    return (np.asarray(tile) // 4 * 4 + 2).astype(np.uint8)


def _patch_bank(rng: np.random.Generator) -> dict[str, list[np.ndarray]]:
    """A few dozen patches per kind, reused with flips and rotations (drawing is the slow part)."""
    sizes = {"BACK": 6, "LYM": BANK, "TUM": BANK, "TUM-big": BANK, "STR": BANK}
    return {kind: [_patch(kind, rng) for _ in range(n)] for kind, n in sizes.items()}


def _slide_image(
    rng: np.random.Generator, bank: dict[str, list[np.ndarray]], lym: float, mutated: bool
) -> np.ndarray:
    image = np.empty((GRID * PATCH, GRID * PATCH, 3), np.uint8)
    for gy in range(GRID):
        for gx in range(GRID):
            if rng.random() < 0.15:
                kind = "BACK"
            elif rng.random() < lym:
                kind = "LYM"
            elif rng.random() < 0.65:
                kind = "TUM-big" if mutated else "TUM"
            else:
                kind = "STR"
            choices = bank[kind]
            tile = np.rot90(choices[int(rng.integers(len(choices)))], int(rng.integers(4)))
            if rng.random() < 0.5:
                tile = tile[:, ::-1]
            image[gy * PATCH : (gy + 1) * PATCH, gx * PATCH : (gx + 1) * PATCH] = tile
    return image


def _write_pyramid(path: Path, image: np.ndarray) -> None:
    import tifffile

    with tifffile.TiffWriter(path) as tif:
        for level in range(LEVELS):
            per_cm = 1e4 / (MPP * 2**level)
            tif.write(
                image,
                tile=(256, 256),
                photometric="rgb",
                compression="zlib",
                compressionargs={"level": 1},  # 5x faster than the default, 8 % larger
                subfiletype=1 if level else 0,
                resolution=(per_cm, per_cm),
                resolutionunit="CENTIMETER",
            )
            h, w = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
            image = np.rint(
                image[:h, :w].reshape(h // 2, 2, w // 2, 2, 3).mean(axis=(1, 3))
            ).astype(np.uint8)


def _maf_row(gene: str, classification: str, barcode: str, position: int) -> list[str]:
    return [
        gene, "0", "histobench-demo", "GRCh38", "chr1", str(position), str(position), "+",
        classification, "SNP", "C", "C", "T", "novel", barcode, barcode[:12] + "-10A-01D-A000-08",
    ]  # fmt: skip


def generate_demo_cohort(root: Path, patients: int = 24) -> Path:
    """Write the demo cohort into ``root`` (a fresh folder); return its cohort TOML."""
    (root / "slides").mkdir(parents=True)
    rng = np.random.default_rng(SEED)
    ids = [f"TCGA-HB-{i + 1:04d}" for i in range(patients)]
    lym = rng.uniform(0.05, 0.65, patients)
    stk11 = np.zeros(patients, bool)
    stk11[rng.permutation(patients)[: patients // 2]] = True
    null_mut = {g: rng.random(patients) < rate for g, rate in NULL_MUTATIONS.items()}
    slides_per_patient = 1 + (rng.random(patients) < 0.5)
    bank = _patch_bank(np.random.default_rng([SEED, 1]))
    for i, pid in enumerate(ids):
        for s in range(int(slides_per_patient[i])):
            srng = np.random.default_rng([SEED, 2, i, s])
            image = _slide_image(srng, bank, float(lym[i]), bool(stk11[i]))
            _write_pyramid(root / "slides" / f"{pid}-01Z-00-DX{s + 1}.tif", image)
    # Mutations: a MAF in GDC's layout. Every patient has a silent TTN variant (so every
    # patient is in the MAF and counts as a negative), and some have silent STK11 variants,
    # which the non-silent filter must ignore.
    rows = []
    for i, pid in enumerate(ids):
        barcode = f"{pid}-01A-11D-A000-08"
        rows.append(_maf_row("TTN", "Silent", barcode, 1000 + i))
        if stk11[i]:
            rows.append(_maf_row(PLANTED_MUTATION, "Missense_Mutation", barcode, 2000 + i))
        elif i % 5 == 0:
            rows.append(_maf_row(PLANTED_MUTATION, "Silent", barcode, 2000 + i))
        for gene, flags in null_mut.items():
            if flags[i]:
                rows.append(_maf_row(gene, "Nonsense_Mutation", barcode, 3000 + i))
    lines = ["#version gdc-1.0.0", "\t".join(MAF_COLUMNS)] + ["\t".join(r) for r in rows]
    (root / "mutations.maf").write_text("\n".join(lines) + "\n")
    # Expression: genes × samples TPM, one primary-tumour sample per patient, plus normal-tissue
    # samples for two patients that the default sample-type filter drops.
    genes = list(IMMUNE_GENES) + NULL_EXPRESSION_GENES
    samples = [f"{pid}-01A" for pid in ids] + [f"{ids[0]}-11A", f"{ids[1]}-11A"]
    tpm = np.empty((len(genes), len(samples)))
    for g, gene in enumerate(genes):
        strength = IMMUNE_GENES.get(gene, 0.0)
        signal = np.concatenate([lym, lym[:2]])
        tpm[g] = 2 ** (3 + 6 * strength * signal + rng.normal(0, 0.6, len(samples))) - 1
    header = "gene_name\t" + "\t".join(samples)
    body = [f"{gene}\t" + "\t".join(f"{v:.4f}" for v in tpm[g]) for g, gene in enumerate(genes)]
    (root / "expression.tsv").write_text("\n".join([header, *body]) + "\n")
    toml = root / "cohort.toml"
    toml.write_text(
        "\n".join(
            [
                "# Synthetic demo cohort written by histobench: machinery, not biology.",
                "[cohort]",
                'name = "demo-luad"',
                'slides = "slides/"',
                'mutations = "mutations.maf"',
                'expression = "expression.tsv"',
                f"genes = {json.dumps([PLANTED_MUTATION, *NULL_MUTATIONS, *genes])}",
                "",
                "[cohort.tiling]",
                f"tile_px = {PATCH}",
                f"target_mpp = {MPP}",
                "min_tissue_fraction = 0.5",
                "",
                "[cohort.tiling.mask]",
                "# Fixed threshold: Otsu would split tissue-only slides into pale and dark.",
                "saturation_threshold = 0.12",
                "",
                "[cohort.stain]",
                "# Lymphocyte-dense patches can defeat the Macenko estimate; skipping them would",
                "# erase the very signal the demo plants.",
                'on_failure = "keep"',
                "",
            ]
        )
    )
    truth = {
        "lymphocyte_fraction": dict(zip(ids, lym.round(4).tolist(), strict=True)),
        PLANTED_MUTATION: dict(zip(ids, stk11.tolist(), strict=True)),
    }
    (root / "truth.json").write_text(json.dumps(truth, indent=1))
    return toml


def demo_cohort(patients: int = 24) -> Path:
    """Generate (once) and return the demo cohort's TOML file."""
    root = (
        home.data_dir() / "demo" / ("luad-cohort" if patients == 24 else f"luad-cohort-{patients}")
    )
    marker = root / "demo.json"
    expected = {"generator": GENERATOR_VERSION, "patients": patients, "seed": SEED}
    if marker.is_file() and json.loads(marker.read_text()) == expected:
        return root / "cohort.toml"
    tmp = root.with_name(root.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    generate_demo_cohort(tmp, patients)
    (tmp / "demo.json").write_text(json.dumps(expected))
    shutil.rmtree(root, ignore_errors=True)
    os.replace(tmp, root)  # appears whole or not at all
    return root / "cohort.toml"


def load_demo_cohort(source: str, options: DemoCohortOptions) -> Dataset:
    from histobench.datasets.cohort import load_cohort

    return load_cohort(str(demo_cohort(options.patients)))
