"""Patient-level labels from TCGA/GDC files: mutations (MAF, wide, long) and expression."""

from __future__ import annotations

from histobench.datasets.labels.expression import load_expression
from histobench.datasets.labels.mutations import NON_SILENT, load_mutations
from histobench.plugins.labels import LabelMatrix, patient_key

__all__ = ["NON_SILENT", "LabelMatrix", "load_expression", "load_mutations", "patient_key"]
