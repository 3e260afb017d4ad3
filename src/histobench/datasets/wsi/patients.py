"""Patients of slides: TCGA barcodes → patient ids.

The study represents a patient by the mean of all its tiles' features, across all its
slides (``histobench.benchmark.runner.pooled_features``, weighted by each slide's tile
count); a patient with several slides is one sample, never several (that would leak
between cross-validation folds).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import TYPE_CHECKING

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
