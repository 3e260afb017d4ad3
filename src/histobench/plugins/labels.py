"""Label types shared by data sets and tasks: the patient-level label matrix and TCGA barcodes.

A data set reads label files into a ``LabelMatrix``; a task consumes it. Both sides import it
from here, so neither depends on the other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

# TCGA-<tissue source site>-<participant>: the first 12 characters of every TCGA barcode.
_TCGA_PATIENT = re.compile(r"^(TCGA-[A-Z0-9]{2}-[A-Z0-9]{4})(?![A-Z0-9])", re.IGNORECASE)


def patient_from_barcode(name: str) -> str | None:
    """``TCGA-55-8507-01Z-00-DX1.3C61….svs`` → ``TCGA-55-8507``; None if not a TCGA barcode."""
    match = _TCGA_PATIENT.match(name.strip())
    return match.group(1).upper() if match else None


def site_from_barcode(name: str) -> str | None:
    """``TCGA-55-8507…`` → ``55``, the tissue-source site (the centre that sent the sample);
    None if not a TCGA barcode."""
    patient = patient_from_barcode(name)
    return patient.split("-")[1] if patient else None


@dataclass
class LabelMatrix:
    """Patient-level labels: ``values[i, j]`` is gene ``genes[j]`` of ``patients[i]``.

    Mutations hold 1 (mutated), 0 (not) or NaN (unknown); expression holds transformed values
    or NaN. ``report`` says what the reader detected, dropped, merged or averaged; it is
    recorded with every run that uses the labels.
    """

    kind: str  # "mutation" or "expression"
    source: Path
    patients: list[str]
    genes: list[str]
    values: np.ndarray
    report: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.values.shape != (len(self.patients), len(self.genes)):
            raise ValueError(
                f"values {self.values.shape} vs {len(self.patients)} patients × "
                f"{len(self.genes)} genes"
            )

    def gene_index(self) -> dict[str, int]:
        return {g: j for j, g in enumerate(self.genes)}

    def patient_index(self) -> dict[str, int]:
        return {p: i for i, p in enumerate(self.patients)}


def patient_key(name: str) -> str:
    """A patient id: the 12-character TCGA patient barcode where there is one, else as given."""
    name = str(name).strip()
    return patient_from_barcode(name) or name


def is_barcode(name: object) -> bool:
    return patient_from_barcode(str(name)) is not None


def sample_type(barcode: str) -> str | None:
    """``TCGA-55-8507-01A`` → ``"01"`` (the sample type code), None without a sample part."""
    parts = str(barcode).strip().split("-")
    if len(parts) >= 4 and parts[0].upper() == "TCGA" and len(parts[3]) >= 2:
        code = parts[3][:2]
        return code if code.isdigit() else None
    return None


class PatientLabels(Protocol):
    """What a data set offers the patient-level tasks: label matrices read on demand."""

    def genes(self) -> list[str] | None:
        """The data set's own gene list, None when it names none."""
        ...

    def mutations(self, genes: list[str] | None = None) -> LabelMatrix:
        """Mutation status (1 / 0 / NaN); a ``DataError`` when the data set has none."""
        ...

    def expression(self, genes: list[str] | None = None) -> LabelMatrix:
        """Transformed expression values; a ``DataError`` when the data set has none."""
        ...


@dataclass
class InMemoryLabels:
    """Label matrices already in memory (built in code, e.g. by tests or notebooks)."""

    mutation_matrix: LabelMatrix | None = None
    expression_matrix: LabelMatrix | None = None
    gene_list: list[str] | None = None

    def genes(self) -> list[str] | None:
        return self.gene_list

    def mutations(self, genes: list[str] | None = None) -> LabelMatrix:
        return _present(self.mutation_matrix, "mutation")

    def expression(self, genes: list[str] | None = None) -> LabelMatrix:
        return _present(self.expression_matrix, "expression")


def _present(matrix: LabelMatrix | None, kind: str) -> LabelMatrix:
    if matrix is None:
        from histobench.plugins.errors import DataError

        raise DataError(f"no {kind} labels were given")
    return matrix
