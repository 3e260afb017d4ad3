"""A ready ``luad.toml`` cohort file for what ``bench data fetch tcga-luad-*`` brought in.

Keys are those of the ``cohort`` data set (``histobench.datasets.cohort``); paths are relative
to the file. The gene list is the study's nine most frequently mutated LUAD genes; edit it (or
give the tasks their own ``genes``/``genes_file``) for other targets, e.g. an expression panel.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

STUDY_MUTATION_GENES = ("STK11", "TP53", "LRP1B", "NF1", "FAT1", "FAT4", "KEAP1", "EGFR", "KRAS")
COHORT_FILE = "luad.toml"


def _toml_string(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid TOML basic string


def write_cohort_file(
    root: Path,
    *,
    slides: str,
    mutations: str | None,
    expression: str | None,
    genes: tuple[str, ...] = STUDY_MUTATION_GENES,
) -> Path:
    lines = [
        "# Written by `bench data fetch`; paths are relative to this file.",
        "[cohort]",
        f"name = {_toml_string('tcga-luad')}",
        f"slides = {_toml_string(slides)}  # slide manifest CSV (path, slide_id, patient)",
    ]
    if mutations:
        lines.append(f"mutations = {_toml_string(mutations)}  # GDC masked somatic MAFs")
    if expression:
        lines.append(
            f"expression = {_toml_string(expression)}  # GDC STAR-counts + gdc_sample_sheet.tsv"
        )
    lines.append("genes = [" + ", ".join(_toml_string(g) for g in genes) + "]")
    path = root / COHORT_FILE
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path
