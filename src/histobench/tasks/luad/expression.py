"""luad-expression: patient features → per-gene e1071 SVR → Pearson r (study experiment 2)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from histobench.benchmark.progress import make_progress
from histobench.plugins.specs import Predictions, SplitPlan, TargetResult, TaskResult, Units
from histobench.tasks.luad.base import LuadTask, n_jobs
from histobench.tasks.luad.options import LuadExpressionOptions
from histobench.tasks.luad.scoring import (
    fold_mean,
    masked_pearson,
    none_if_nan,
    quiet_nan_warnings,
    significant,
)


class LuadExpressionTask(LuadTask):
    name = "luad-expression"
    metric = "pearson_r"
    label_kind = "expression"

    def __init__(self, options: LuadExpressionOptions) -> None:
        super().__init__(options)
        self.options: LuadExpressionOptions = options

    def _usable(self, plan: SplitPlan) -> list[int]:
        """Genes that every training fold can fit: enough values and not constant."""
        keep = []
        finite = np.isfinite(self.Y)
        for g, gene in enumerate(self.genes):
            n = int(finite[:, g].sum())
            if n == 0:
                self.skipped_genes[gene] = "all values missing"
            elif n < max(self.options.min_samples, plan.folds):
                self.skipped_genes[gene] = f"only {n} patients with a value"
            elif not np.nanstd(self.Y[:, g]) > 0:
                self.skipped_genes[gene] = "no variance"
            else:
                keep.append(g)
        # e1071 scales y on each training fold: a gene constant there (e.g. mostly zeros)
        # cannot be fitted, so it is skipped rather than crashing every other gene.
        for r, k, train, _ in plan.iter_folds():
            if not keep:
                break
            block = self.Y[np.ix_(train, np.asarray(keep, dtype=np.int64))]
            counts = np.isfinite(block).sum(axis=0)
            with quiet_nan_warnings():
                sd = np.nanstd(block, axis=0)
            bad = (counts < 2) | ~(sd > 0)
            for j in np.flatnonzero(bad)[::-1]:
                self.skipped_genes[self.genes[keep[j]]] = (
                    f"constant on the training patients of repeat {r} fold {k}"
                )
                del keep[j]
        return keep

    def _predict(self, X: np.ndarray, Yk: np.ndarray, plan: SplitPlan) -> np.ndarray:
        """Out-of-fold predictions (R, N, G) of every kept gene."""
        from histobench.tasks.estimators.svr import svr_cross_val_predict

        o = self.options
        R, K = plan.repeats, plan.folds
        pred = np.full((R, X.shape[0], Yk.shape[1]), np.nan)
        jobs = n_jobs(o.n_jobs)
        # Repeats in batches: each fold's kernel is computed once for all genes; a batch holds
        # at least 8 folds per core so cores do not idle at the end of a batch (5 folds on 2
        # cores would leave one idle a third of the time), and the bar still moves.
        step = max(1, math.ceil(8 * jobs / K))
        with make_progress("repeats") as progress:
            bar = progress.add_task(f"{self.name} ({Yk.shape[1]} genes)", total=R, rate="")
            for r0 in range(0, R, step):
                r1 = min(R, r0 + step)
                pred[r0:r1] = svr_cross_val_predict(
                    X,
                    Yk,
                    plan.assignments[r0:r1].astype(np.int64),
                    cost=o.cost,
                    epsilon=o.epsilon,
                    gamma=o.gamma,
                    tolerance=o.tolerance,
                    constant_columns=o.constant_columns,
                    n_jobs=jobs,
                )
                progress.update(bar, advance=r1 - r0)
        return pred

    def evaluate(self, features: np.ndarray, units: Units, plan: SplitPlan) -> TaskResult:
        o = self.options
        keep = self._usable(plan)
        R, K = plan.repeats, plan.folds
        Yk = self.Y[:, keep]
        X = np.asarray(features, dtype=np.float64)
        pred = self._predict(X, Yk, plan) if keep else np.full((R, X.shape[0], 0), np.nan)
        # Scores for all genes at once (masked where a patient has no value for a gene).
        pooled_r = np.full((R, len(keep)), np.nan)
        pooled_p = np.full((R, len(keep)), np.nan)
        fold_r = np.full((R, K, len(keep)), np.nan)
        for rep in range(R):
            pooled_r[rep], pooled_p[rep] = masked_pearson(Yk, pred[rep], o.alternative)
        for rep, k, _, test in plan.iter_folds():
            fold_r[rep, k] = masked_pearson(Yk[test], pred[rep, test], o.alternative)[0]
        per_target: dict[str, TargetResult] = {}
        predictions: list[Predictions] = []
        for j, g in enumerate(keep):
            gene, y = self.genes[g], Yk[:, j]
            per_target[gene] = TargetResult(
                metric="pearson_r",
                repeat_scores=fold_mean(fold_r[:, :, j]),
                fold_scores=fold_r[:, :, j],
                extra={
                    "pooled_scores": none_if_nan(pooled_r[:, j]),
                    "p_values": none_if_nan(pooled_p[:, j]),
                    "significant": significant(pooled_p[:, j], o.alpha, o.significance_rule),
                    "n": int(np.isfinite(y).sum()),
                },
            )
            predictions.append(Predictions(gene, y.copy(), pred[:, :, j].copy()))
        return self._finish("pearson_r", per_target, predictions)

    def describe(self) -> dict[str, Any]:
        o = self.options
        return {
            "estimator": "SVR, R e1071 svm() eps-regression semantics (x and y scaled on the "
            "training fold, RBF kernel)",
            "cost": o.cost,
            "epsilon": o.epsilon,
            "gamma": o.gamma if o.gamma is not None else "1/n_features",
            "tolerance": o.tolerance,
            "constant_columns": o.constant_columns,
            "min_samples": o.min_samples,
            "metric": "Pearson r of observed vs out-of-fold predictions within each test fold",
            **self._common_description(),
        }
