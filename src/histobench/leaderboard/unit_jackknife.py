"""The unit jackknife test (``statistics.jackknife``) on stored runs: headline, per target, and
a run's own CI.

A task names its paired test in its run details (``paired_test``); tasks whose units are
patients scored by r or AUC from stored out-of-fold predictions name ``jackknife``, the test
their null calibration chose (BENCHMARKS.md). It needs the runs' stored predictions and plan;
the fold means it recomputes from them must equal the runs' displayed scores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from histobench.benchmark.store import ResultsStore, RunRecord
from histobench.leaderboard.pairing import ComparisonError
from histobench.plugins.errors import DataError
from histobench.plugins.specs import Predictions
from histobench.statistics import StatisticsError, TestResult
from histobench.statistics.jackknife import METRICS, unit_jackknife_test

DEFAULT_TEST = "nb-ttest"


def default_test(run: RunRecord) -> str:
    """The paired test the run's task chose for its quantity (``nb-ttest`` unless it says)."""
    return str(run.details.get("paired_test", DEFAULT_TEST))


@dataclass(frozen=True)
class JackknifeInputs:
    targets: list[str]
    y: np.ndarray  # (T, N)
    pred_a: np.ndarray  # (T, R, N)
    pred_b: np.ndarray | None
    assignments: np.ndarray  # (R, N)


def _scores(pred: Predictions, metric: str) -> np.ndarray:
    """The stored out-of-fold values the metric ranks or correlates: (R, N)."""
    if metric == "auc" and pred.y_score is not None and np.asarray(pred.y_score).ndim == 2:
        return np.asarray(pred.y_score, dtype=float)
    return np.asarray(pred.y_pred, dtype=float)


def jackknife_inputs(store: ResultsStore, a: RunRecord, b: RunRecord | None) -> JackknifeInputs:
    """Labels, predictions and plan of one run (or a pair), checked to belong together."""
    if a.metric not in METRICS:
        raise ComparisonError(
            f"the unit jackknife scores {', '.join(METRICS)}; task {a.task} is scored by"
            f" {a.metric} (use --test nb-ttest)"
        )
    plan = store.load_plan(a.plan_id)
    if plan is None:
        raise DataError(f"split plan {a.plan_id} of run {a.run_id} is missing from the store")
    pa = store.predictions(a.run_id)
    pb = store.predictions(b.run_id) if b is not None else pa
    names = [t for t in store.target_results(a.run_id) if t in pa and t in pb]
    if not names:
        runs = a.run_id if b is None else f"{a.run_id} and {b.run_id}"
        raise ComparisonError(f"the unit jackknife needs stored out-of-fold predictions; {runs}"
                              " share none (use --test nb-ttest)")  # fmt: skip
    ys = []
    for t in names:
        y = np.asarray(pa[t].y_true, dtype=float)
        if b is not None and not np.array_equal(y, np.asarray(pb[t].y_true, float), equal_nan=True):
            raise ComparisonError(
                f"runs {a.run_id} and {b.run_id} hold different labels for target {t}"
            )
        if y.shape[0] != plan.n_units:
            raise DataError(
                f"run {a.run_id}: target {t} has {y.shape[0]} units, its plan {plan.n_units}"
            )
        ys.append(y)
    return JackknifeInputs(
        names,
        np.stack(ys),
        np.stack([_scores(pa[t], a.metric) for t in names]),
        None if b is None else np.stack([_scores(pb[t], a.metric) for t in names]),
        np.asarray(plan.assignments),
    )


def jackknife_headline(store: ResultsStore, a: RunRecord, b: RunRecord) -> TestResult:
    """The test of the headline difference A − B (the mean over targets of fold means)."""
    x = jackknife_inputs(store, a, b)
    return unit_jackknife_test(x.y, x.pred_a, x.pred_b, x.assignments, a.metric)


def jackknife_per_target(
    store: ResultsStore, a: RunRecord, b: RunRecord
) -> tuple[list[str], list[TestResult | str]]:
    """Per target: its test, or the reason it has none (e.g. too few mutated patients)."""
    x = jackknife_inputs(store, a, b)
    assert x.pred_b is not None
    out: list[TestResult | str] = []
    for t in range(len(x.targets)):
        try:
            out.append(
                unit_jackknife_test(x.y[t], x.pred_a[t], x.pred_b[t], x.assignments, a.metric)
            )
        except StatisticsError as err:
            out.append(str(err))
    return x.targets, out


def jackknife_ci(store: ResultsStore, run: RunRecord) -> tuple[float, float]:
    """95 % CI of one run's displayed score by the same unit jackknife (NaN if unavailable)."""
    try:
        x = jackknife_inputs(store, run, None)
        res = unit_jackknife_test(x.y, x.pred_a, None, x.assignments, run.metric)
    except (ComparisonError, DataError, StatisticsError):
        return math.nan, math.nan
    return res.ci_low, res.ci_high
