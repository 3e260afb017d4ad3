"""crc-tissue: tile features → one-vs-rest linear SVC → accuracy overall and per class.

The study's experiment 1 (CRC-VAL-HE-7K, nine tissue classes). Features are standardised on
each training fold only; per-class accuracy is the fraction of a class's tiles classified
correctly (recall), as the study reports it.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from joblib import Parallel, delayed
from pydantic import Field
from sklearn.exceptions import ConvergenceWarning

from histobench.benchmark.progress import stderr_console
from histobench.plugins.errors import DataError
from histobench.plugins.specs import (
    Dataset,
    Item,
    PluginOptions,
    Predictions,
    SplitPlan,
    TargetResult,
    Task,
    TaskResult,
    Units,
)
from histobench.tasks.estimators._threads import share_cores_between
from histobench.tasks.estimators.linear_svc import FastLinearSVC


class CrcTissueOptions(PluginOptions):
    C: float = Field(1.0, gt=0, description="SVC regularisation (larger = less regularised).")
    estimator: Literal["auto", "fast", "liblinear"] = Field(
        "auto",
        description="Solver of the same objective, each run until the relative duality gap is "
        "at most 1e-6 (FastLinearSVC's certificate), so the choice changes speed, not "
        "predictions: fast = histobench's solvers (picked by shape: row-space Newton, dual "
        "coordinate descent or L-BFGS); liblinear = scikit-learn LinearSVC(dual=True), "
        "certified and polished; auto = fast (faster than liblinear at every shape measured, "
        "see BENCHMARKS.md).",
    )
    max_iter: int = Field(2000, ge=10, description="Solver iteration cap.")
    n_jobs: int = Field(-1, description="Parallel fold fits (-1: all cores).")


# What "auto" runs. Once every fit is certified to the same duality gap, liblinear (its dual
# stopped at dual_tol, then polished by float64 L-BFGS) was slower than histobench's own
# solvers at every shape measured, by 8x at the demo's 172 x 1,280 and 918x at 5,744 x 384
# (a ViT-S embedding of CRC-VAL-HE-7K), where its dual ran to max_iter (BENCHMARKS.md,
# ``bench_estimators.py --only svc-shapes``). Until 3 December 2026 "auto" took liblinear
# for n_train x p <= 4,000,000, a crossover measured before the certificate existed.
AUTO_SOLVER = "fast"


def _solver(choice: str) -> str:
    return AUTO_SOLVER if choice == "auto" else choice


def _fit_fold(
    X: np.ndarray, y: np.ndarray, train: np.ndarray, test: np.ndarray, options: CrcTissueOptions
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(predictions, decision values, the fit's record: solver, iterations, gap, converged)."""
    # Every solver stops on the same certified duality gap; they differ only in speed.
    solver = "liblinear" if _solver(options.estimator) == "liblinear" else "auto"
    # Standardises on the training rows itself (1/n scale, like StandardScaler).
    model = FastLinearSVC(C=options.C, max_iter=options.max_iter, dtype=np.float32, solver=solver)
    model.fit(X[train], y[train])
    decision, classes = model.decision_function(X[test]), model.classes_
    record = {
        "solver": model.solver_,
        "n_iter": model.n_iter_,
        "gap": float(model.duality_gap_.max()),
        "converged": model.converged_,
    }
    if decision.ndim == 1:  # binary: one column; make it (n, 2) like the multi-class case
        decision = np.stack([-decision, decision], axis=1)
    # Classes absent from a training fold get no column; map back to the global class index.
    full = np.full((len(test), int(y.max()) + 1), -np.inf, dtype=np.float32)
    full[:, classes] = decision
    return full.argmax(axis=1), full, record


def _fit_records(records: list[dict[str, Any]]) -> dict[str, Any]:
    """What the run stores about its fits: solvers, iterations, certificates, convergence."""
    return {
        "fits": len(records),
        "fits_not_converged": sum(not r["converged"] for r in records),
        "solvers": dict(Counter(r["solver"] for r in records)),
        "max_iterations": max((r["n_iter"] for r in records), default=0),
        "max_relative_duality_gap": max((r["gap"] for r in records), default=0.0),
        "duality_gap_tol": FastLinearSVC().tol,
    }


class CrcTissueTask(Task):
    name = "crc-tissue"
    metric = "accuracy"
    target_kind = "class"

    def __init__(self, options: CrcTissueOptions) -> None:
        self.options = options
        self.classes: list[str] = []

    def units(self, dataset: Dataset, items: Sequence[Item]) -> Units:
        if any(it.label is None for it in items):
            raise DataError(f"{dataset.name}: crc-tissue needs a class label for every tile")
        self.classes = sorted({str(it.label) for it in items})
        if len(self.classes) < 2:
            raise DataError(f"{dataset.name}: crc-tissue needs at least two classes")
        index = {c: i for i, c in enumerate(self.classes)}
        return Units(
            ids=[it.item_id for it in items],
            strata=np.array([index[str(it.label)] for it in items]),
            groups=[it.patient or it.item_id for it in items],
            members=[np.array([i]) for i in range(len(items))],
        )

    def evaluate(self, features: np.ndarray, units: Units, plan: SplitPlan) -> TaskResult:
        y = units.strata
        R, K, N, C = plan.repeats, plan.folds, len(y), len(self.classes)
        jobs = list(plan.iter_folds())
        n_jobs = self.options.n_jobs if self.options.n_jobs > 0 else (os.cpu_count() or 1)
        # Both solvers spend their time in code that releases the GIL (BLAS, liblinear), so
        # threads parallelise without copying the features; each gets its share of the cores'
        # BLAS threads (``_threads``).
        with warnings.catch_warnings(), share_cores_between(n_jobs):
            # Counted and recorded below instead of one ConvergenceWarning per fit.
            warnings.simplefilter("ignore", ConvergenceWarning)
            fitted = Parallel(n_jobs=n_jobs, prefer="threads")(
                delayed(_fit_fold)(features, y, train, test, self.options)
                for _, _, train, test in jobs
            )
        fits = _fit_records([rec for _, _, rec in fitted])
        if fits["fits_not_converged"]:
            stderr_console.print(
                f"crc-tissue: {fits['fits_not_converged']} of {len(jobs)} fits stopped at "
                f"max_iter={self.options.max_iter} above the duality-gap tolerance "
                f"(recorded in the run details)"
            )
        y_pred = np.empty((R, N), dtype=np.int16)
        scores = np.empty((R, N, C), dtype=np.float32)
        fold_scores = np.empty((R, K))
        class_folds = np.full((C, R, K), np.nan)
        for (r, k, _, test), (pred, decision, _) in zip(jobs, fitted, strict=True):
            y_pred[r, test] = pred
            scores[r, test] = decision
            fold_scores[r, k] = float(np.mean(pred == y[test]))
            for c in range(C):
                mask = y[test] == c
                if mask.any():
                    class_folds[c, r, k] = float(np.mean(pred[mask] == c))
        # A repeat's score is the mean of its K fold scores: the quantity the corrected
        # repeated-CV t-test and the CI use (pooled accuracy differs when folds differ in size).
        per_target = {
            name: TargetResult(
                metric="accuracy",
                repeat_scores=_fold_mean(class_folds[c]),
                fold_scores=class_folds[c],
                extra={"n_tiles": int((y == c).sum())},
            )
            for c, name in enumerate(self.classes)
        }
        return TaskResult(
            metric="accuracy",
            fold_scores=fold_scores,
            repeat_scores=fold_scores.mean(axis=1),
            per_target=per_target,
            predictions=[Predictions("class", y.astype(np.int16), y_pred, scores)],
            details={**self.describe(), "classes": self.classes, "fits": fits},
        )

    def describe(self) -> dict[str, Any]:
        return {
            "estimator": "one-vs-rest linear SVC (squared hinge, L2) on standardised features",
            "implementation": self.options.estimator,
            "auto_rule": "fast: row-space Newton when 2 n_train ≤ p, dual coordinate descent "
            "when n_train ≤ 4 p, else L-BFGS",
            "stopping_rule": "relative duality gap ≤ 1e-6 for every class, every solver",
            "C": self.options.C,
            "max_iter": self.options.max_iter,
            "per_class_metric": "recall (fraction of the class's tiles classified correctly)",
            "repeat_score": "mean of the K per-fold scores (the tested quantity)",
        }


def _fold_mean(fold_scores: np.ndarray) -> np.ndarray:
    """Per-repeat mean of the finite fold scores (a class may be absent from a test fold)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN repeat: NaN is the answer
        return np.nanmean(fold_scores, axis=1)


def make_task(options: CrcTissueOptions) -> Task:
    return CrcTissueTask(options)
