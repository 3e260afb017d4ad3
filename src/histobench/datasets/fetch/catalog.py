"""The data sets ``bench data`` knows, where they live, and whether they are there."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from histobench.datasets.fetch.download import PART_SUFFIX
from histobench.datasets.fetch.gdc import GDC_SETS
from histobench.datasets.fetch.records import read_record
from histobench.datasets.fetch.zenodo import ZENODO_SETS, download_dir

LUAD_FOLDER = "tcga-luad"  # the TCGA sets share one cohort folder


@dataclass(frozen=True)
class KnownDataset:
    name: str
    source: str
    description: str
    size: str  # as published; the exact bytes come from the source at fetch time


CATALOG = {
    d.name: d
    for d in (
        KnownDataset("crc-val-he-7k", "Zenodo 1214456",
                     "7,180 CRC tiles, 9 classes (evaluation set of the study)", "800 MB"),
        KnownDataset("nct-crc-he-100k", "Zenodo 1214456",
                     "100,000 CRC tiles, 9 classes, Macenko-normalised (FTX training)", "11.7 GB"),
        KnownDataset("nct-crc-he-100k-nonorm", "Zenodo 1214456",
                     "the same 100,000 tiles without colour normalisation", "11.7 GB"),
        KnownDataset("tcga-luad-slides", "GDC",
                     "TCGA-LUAD whole-slide images (frozen by default, --ffpe)",
                     "see --dry-run"),
        KnownDataset("tcga-luad-mutations", "GDC",
                     "TCGA-LUAD open-access masked somatic mutation MAFs", "see --dry-run"),
        KnownDataset("tcga-luad-expression", "GDC",
                     "TCGA-LUAD STAR-counts gene expression files", "see --dry-run"),
    )
}  # fmt: skip


def location(name: str, parent: Path) -> Path:
    """A tile set's folder, or the TCGA cohort folder, under ``parent``."""
    return parent / (LUAD_FOLDER if name in GDC_SETS else name)


def status(name: str, parent: Path) -> str:
    """'present (N files)', 'partial', 'present (not fetched by histobench)' or 'absent'."""
    root = location(name, parent)
    record = read_record(root, name) if root.is_dir() else None
    if record is not None:
        return f"present ({len(record.files)} files)"
    if name in ZENODO_SETS:
        if download_dir(root).is_dir():
            return "partial (run fetch again)"
        if root.is_dir() and any(p.is_dir() for p in root.iterdir()):
            return "present (not fetched by histobench: no checksums)"
        return "absent"
    sub = root / GDC_SETS[name].folder
    if sub.is_dir() and any(sub.iterdir()):
        partial = any(p.name.endswith(PART_SUFFIX) for p in sub.iterdir())
        return "partial (run fetch again)" if partial else "partial (not verified)"
    return "absent"
