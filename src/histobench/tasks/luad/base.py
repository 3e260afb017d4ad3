"""What both LUAD tasks share: features and labels aligned by patient, gene selection, and the
run's headline built from the per-gene fold scores."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from histobench.plugins.errors import DataError
from histobench.plugins.labels import LabelMatrix, patient_key
from histobench.plugins.specs import (
    Dataset,
    Item,
    Predictions,
    TargetResult,
    Task,
    TaskResult,
    Units,
)
from histobench.statistics import benjamini_hochberg
from histobench.tasks.luad.options import LuadOptions, read_gene_list
from histobench.tasks.luad.scoring import fold_mean, none_if_nan, quiet_nan_warnings, significant


def n_jobs(requested: int) -> int:
    return requested if requested > 0 else max(1, (os.cpu_count() or 1) + 1 + requested)


def headline(per_target: dict[str, TargetResult]) -> tuple[np.ndarray, np.ndarray]:
    """(fold scores (R, K), repeat scores (R,)) of the run: the mean over genes of each fold's
    score, and each repeat's mean of those, so the displayed mean is the tested quantity."""
    folds = np.stack([np.asarray(t.fold_scores, dtype=float) for t in per_target.values()])
    with quiet_nan_warnings():
        headline_folds = np.nanmean(folds, axis=0)
    return headline_folds, fold_mean(headline_folds)


class LuadTask(Task):
    """Alignment of features and labels by patient; gene selection; shared reporting."""

    label_kind = ""
    target_kind = "gene"
    # The paired test bench compare and the leaderboard use by default, chosen per task by the
    # null calibration at the LUAD shape (benchmarks/bench_luad_null.py, BENCHMARKS.md).
    paired_test = "jackknife"

    def __init__(self, options: LuadOptions) -> None:
        self.options = options
        self.genes: list[str] = []
        self.Y = np.empty((0, 0))
        self.alignment: dict[str, Any] = {}
        self.skipped_genes: dict[str, str] = {}
        self.label_report: dict[str, Any] = {}

    # -- labels ---------------------------------------------------------------------------

    def _requested_genes(self, dataset: Dataset) -> list[str] | None:
        if self.options.genes is not None:
            return list(self.options.genes)
        if self.options.genes_file is not None:
            return read_gene_list(Path(self.options.genes_file))
        return dataset.labels.genes() if dataset.labels is not None else None

    def _label_matrix(self, dataset: Dataset, genes: list[str] | None) -> LabelMatrix:
        if dataset.labels is None:
            raise DataError(
                f"{dataset.name}: {self.name} needs {self.label_kind} labels "
                f"(a cohort file with '{self.label_kind}')"
            )
        if self.label_kind == "mutations":
            return dataset.labels.mutations(genes)
        return dataset.labels.expression(genes)

    def check(self, dataset: Dataset) -> None:
        # Reads (and validates) the label files now; cohorts cache them for ``units``.
        self._label_matrix(dataset, self._requested_genes(dataset))

    def units(self, dataset: Dataset, items: Sequence[Item]) -> Units:
        requested = self._requested_genes(dataset)
        matrix = self._label_matrix(dataset, requested)
        self.label_report = {"source": str(matrix.source), **matrix.report}
        members: dict[str, list[int]] = {}
        for index, item in enumerate(items):
            members.setdefault(patient_key(item.patient or item.item_id), []).append(index)
        label_rows = matrix.patient_index()
        both = sorted(p for p in members if p in label_rows)
        self._record_alignment(members, label_rows)
        if not both:
            raise DataError(
                f"{dataset.name}: no patient has both features and {self.label_kind} labels "
                f"(feature patients e.g. {', '.join(list(members)[:3])}; label patients e.g. "
                f"{', '.join(matrix.patients[:3])}); do the ids share TCGA barcodes?"
            )
        self._select_genes(matrix, requested, [label_rows[p] for p in both])
        return Units(
            ids=both,
            strata=self._strata(),
            groups=list(both),
            members=[np.asarray(members[p]) for p in both],
        )

    def _record_alignment(self, members: dict[str, list[int]], label_rows: dict[str, int]) -> None:
        features_only = sorted(p for p in members if p not in label_rows)
        labels_only = sorted(p for p in label_rows if p not in members)
        self.alignment = {
            "patients_with_features": len(members),
            "patients_with_labels": len(label_rows),
            "patients_used": len(members) - len(features_only),
            "dropped_features_without_labels": len(features_only),
            "dropped_features_without_labels_examples": features_only[:10],
            "dropped_labels_without_features": len(labels_only),
            "dropped_labels_without_features_examples": labels_only[:10],
        }

    def _select_genes(
        self, matrix: LabelMatrix, requested: list[str] | None, rows: list[int]
    ) -> None:
        columns = matrix.gene_index()
        wanted = requested if requested is not None else list(matrix.genes)
        self.skipped_genes = {
            g: f"not in the {self.label_kind} labels ({matrix.source.name})"
            for g in wanted
            if g not in columns
        }
        self.genes = [g for g in dict.fromkeys(wanted) if g in columns]
        if not self.genes:
            raise DataError(
                f"{matrix.source}: none of the genes {', '.join(wanted[:10])} is in the labels"
            )
        self.Y = matrix.values[np.ix_(rows, [columns[g] for g in self.genes])]

    def _strata(self) -> np.ndarray:
        return np.zeros(self.Y.shape[0], dtype=np.int64)

    # -- results --------------------------------------------------------------------------

    def _mark_fdr_significant(self, per_target: dict[str, TargetResult]) -> list[str]:
        """Genes significant after Benjamini-Hochberg across genes within each repeat.

        Each gene keeps its uncorrected call as ``significant_uncorrected``; by chance alone
        about 5 % of null genes pass p < 0.05, so the uncorrected count is not the headline.
        """
        genes = [g for g, t in per_target.items() if "p_values" in t.extra]
        if not genes:
            return []
        p = np.array(
            [[np.nan if v is None else v for v in per_target[g].extra["p_values"]] for g in genes],
            dtype=float,
        )
        q = np.column_stack([benjamini_hochberg(p[:, r]) for r in range(p.shape[1])])
        q = np.where(np.isfinite(q), q, 1.0)
        o = self.options
        calls = []
        for gene, q_row in zip(genes, q, strict=True):
            extra = per_target[gene].extra
            extra["significant_uncorrected"] = extra.get("significant", False)
            extra["q_values"] = none_if_nan(q_row)
            extra["significant"] = significant(q_row, o.alpha, o.significance_rule, inclusive=True)
            if extra["significant"]:
                calls.append(gene)
        return calls

    def _finish(
        self, metric: str, per_target: dict[str, TargetResult], predictions: list[Predictions]
    ) -> TaskResult:
        if not per_target:
            reasons = "; ".join(f"{g}: {r}" for g, r in list(self.skipped_genes.items())[:5])
            raise DataError(f"{self.name}: no gene could be scored ({reasons})")
        headline_folds, headline_repeats = headline(per_target)
        uncorrected = [g for g, t in per_target.items() if t.extra.get("significant")]
        signif = self._mark_fdr_significant(per_target)
        details = {
            **self.describe(),
            "alignment": self.alignment,
            "labels": self.label_report,
            "genes_scored": list(per_target),
            "genes_skipped": self.skipped_genes,
            "significant_genes": signif,
            "n_significant": len(signif),
            "fraction_significant": len(signif) / len(per_target),
            "n_significant_uncorrected": len(uncorrected),
            "significance_method": "Benjamini-Hochberg across the scored genes within each "
            f"repeat (q <= {self.options.alpha:g}), then the rule over repeats "
            f"({self.options.significance_rule}); the uncorrected count uses p < alpha",
            "headline": f"mean {metric} over the {len(per_target)} scored genes of each test "
            "fold; a repeat's score is the mean of its folds",
        }
        return TaskResult(
            metric=metric,
            fold_scores=headline_folds,
            repeat_scores=headline_repeats,
            per_target=per_target,
            predictions=predictions,
            details=details,
        )

    def _common_description(self) -> dict[str, Any]:
        o = self.options
        return {
            "units": "patients with features and labels (tile-weighted mean feature vector)",
            "repeat_score": "mean of the K per-fold scores (the tested quantity); the pooled "
            "out-of-fold score of each repeat is kept per gene as pooled_scores",
            "paired_test": self.paired_test,
            "significance": {
                "alpha": o.alpha,
                "rule": o.significance_rule,
                "alternative": o.alternative,
                "p_value_of": "pooled out-of-fold predictions of each repeat",
            },
            "n_jobs": o.n_jobs,
        }
