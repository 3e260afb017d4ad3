"""Patients: TCGA barcodes → patient ids, and pooling a patient's tile features.

The study represents a patient by the mean of all its tiles' features, across all its
slides; a patient with several slides is one sample, never several (that would leak
between cross-validation folds).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from histobench.plugins.errors import DataError
from histobench.plugins.labels import patient_from_barcode

if TYPE_CHECKING:
    from histobench.datasets.wsi.manifest import SlideRecord


def patient_of(record: SlideRecord) -> str:
    """The record's patient, else the one in its TCGA barcode, else the slide itself."""
    return record.patient or patient_from_barcode(record.slide_id) or record.slide_id


def assign_patients(records: Iterable[SlideRecord]) -> list[SlideRecord]:
    """Fill missing patients from TCGA barcodes (slides without one stay their own patient)."""
    return [
        record if record.patient else replace(record, patient=patient_from_barcode(record.slide_id))
        for record in records
    ]


def group_by_patient(records: Iterable[SlideRecord]) -> dict[str, list[SlideRecord]]:
    groups: dict[str, list[SlideRecord]] = {}
    for record in records:
        groups.setdefault(patient_of(record), []).append(record)
    return groups


def patient_features(
    records: Iterable[SlideRecord], slide_features: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Mean feature vector per patient over all tiles of all its slides (tile-weighted).

    ``slide_features`` maps slide_id → N×D tile features; slides absent from it (failed)
    are left out, and a patient with no tiles at all is left out.
    """
    sums: dict[str, np.ndarray] = {}
    counts: dict[str, int] = {}
    for record in records:
        features = slide_features.get(record.slide_id)
        if features is None or len(features) == 0:
            continue
        features = np.asarray(features, dtype=np.float64)
        patient = patient_of(record)
        if patient in sums and sums[patient].shape != features.shape[1:]:
            raise DataError(
                f"{record.path}: feature dimension {features.shape[1]} differs from other "
                f"slides of patient {patient}"
            )
        sums[patient] = sums.get(patient, 0) + features.sum(axis=0)
        counts[patient] = counts.get(patient, 0) + len(features)
    return {patient: sums[patient] / counts[patient] for patient in sums}
