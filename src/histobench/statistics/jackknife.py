"""Unit jackknife test of the fold-mean difference of two extractors on one repeated K-fold plan.

The score a run shows is the mean over its R × K folds of a per-fold metric (Pearson r, ROC
AUC) of stored out-of-fold predictions. Every unit (patient) enters that mean twice: as a test
unit, whose prediction is scored in one fold of every repeat, and as a training unit, which
shapes the models that predict the others. The test deletes one unit at a time from the
scoring, predictions held fixed, and recomputes the fold-mean difference A − B exactly (the
per-fold metrics without that unit). The jackknife variance of these n values measures the
test role. The training role cannot be measured without refitting; under the null hypothesis
(neither extractor carries signal) a unit's influence on the others' predictions mirrors their
influence on its own, so the second-order (pair) terms that dominate the statistic there are
counted once by the test-role jackknife and twice by the real sampling variance (Hoeffding
decomposition of a degenerate U-statistic). The variance is therefore ``roles`` (2) × the
test-role jackknife; with signal the first-order test term dominates and the doubling is
conservative.

Why not the corrected resampled t-test here: at the LUAD shape (344 patients, 2,048 features,
50 × 5 plan, features independent of the labels) the fold differences of different repeats are
correlated far more than its n_test/n_train = 0.25 allows, and it rejected 13 % of null genes
at α = 0.05; ``benchmarks/bench_luad_null.py`` measures every candidate (BENCHMARKS.md).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy import stats

from histobench.statistics.cv_tests import _t_p_value  # Student t, infinite t included
from histobench.statistics.results import StatisticsError, TestResult, check_alternative

CONFIDENCE = 0.95
ROLES = 2.0  # each unit is scored as a test unit and shapes the models as a training unit
METRICS = ("pearson_r", "auc")

LooScores = Callable[[np.ndarray, np.ndarray], tuple[float, np.ndarray]]


def pearson_without_each(pred: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Pearson r of one fold, and r with each of its units left out (from running sums)."""
    m = y.size
    if m < 3:
        return math.nan, np.full(m, math.nan)
    sx, sy = pred.sum(), y.sum()
    sxx, syy, sxy = (pred * pred).sum(), (y * y).sum(), (pred * y).sum()

    def r(k: float | np.ndarray, a: Any, b: Any, aa: Any, bb: Any, ab: Any) -> Any:
        with np.errstate(invalid="ignore", divide="ignore"):
            return (ab - a * b / k) / np.sqrt((aa - a * a / k) * (bb - b * b / k))

    full = float(r(m, sx, sy, sxx, syy, sxy))
    if m == 3:  # a deletion leaves two points, whose r is ±1 whatever the predictions
        return full, np.full(m, math.nan)
    loo = r(m - 1, sx - pred, sy - y, sxx - pred * pred, syy - y * y, sxy - pred * y)
    return full, np.asarray(loo, dtype=float)


def auc_without_each(score: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """ROC AUC of one fold (ties count one half), and the AUC with each unit left out.

    A positive's placement (negatives below it) is its mid-rank among all units minus its
    mid-rank among the positives; leaving it out removes exactly that from the pair count.
    """
    pos = y > 0.5
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan, np.full(y.size, math.nan)
    ranks = stats.rankdata(score)
    below = np.empty(y.size)
    below[pos] = ranks[pos] - stats.rankdata(score[pos])  # negatives below each positive
    below[~pos] = ranks[~pos] - stats.rankdata(score[~pos])  # positives below each negative
    pairs_won = float(below[pos].sum())
    full = pairs_won / (n_pos * n_neg)
    loo = np.full(y.size, math.nan)
    with np.errstate(invalid="ignore", divide="ignore"):
        if n_pos > 1:
            loo[pos] = (pairs_won - below[pos]) / ((n_pos - 1) * n_neg)
        if n_neg > 1:
            # pairs a negative loses = positives above it = n_pos - positives below it
            loo[~pos] = (pairs_won - (n_pos - below[~pos])) / (n_pos * (n_neg - 1))
    return full, loo


LOO = {"pearson_r": pearson_without_each, "auc": auc_without_each}


def fold_differences(
    y: np.ndarray,
    pred_a: np.ndarray,
    pred_b: np.ndarray | None,
    assignments: np.ndarray,
    metric: str,
) -> tuple[np.ndarray, np.ndarray]:
    """One target's fold differences A − B (R, K) and, for every unit, its fold's difference
    with that unit deleted (R, N). Without ``pred_b``: A's own fold scores.

    ``pred_a``/``pred_b`` are (R, N) out-of-fold predictions, ``assignments`` the (R, N) test
    fold of every unit. Units without a label or a prediction (NaN) are not scored, as in the
    runs' own fold scores. A fold that cannot be scored is NaN; a deletion that would make its
    fold unscorable leaves that fold's difference unchanged.
    """
    loo_scores: LooScores = LOO[metric]
    repeats, n = assignments.shape
    folds = int(assignments.max()) + 1
    scored = np.isfinite(y) & np.isfinite(pred_a).all(axis=0)
    if pred_b is not None:
        scored &= np.isfinite(pred_b).all(axis=0)
    diff = np.full((repeats, folds), math.nan)
    deleted = np.full((repeats, n), math.nan)
    for r in range(repeats):
        for k in range(folds):
            idx = np.flatnonzero((assignments[r] == k) & scored)
            if idx.size == 0:
                continue
            fa, la = loo_scores(pred_a[r, idx], y[idx])
            fb, lb = (0.0, 0.0) if pred_b is None else loo_scores(pred_b[r, idx], y[idx])
            d = fa - fb
            if not math.isfinite(d):
                continue
            diff[r, k] = d
            without = la - lb
            deleted[r, idx] = np.where(np.isfinite(without), without, d)
    return diff, deleted


def fold_mean_and_deletions(
    diffs: Sequence[np.ndarray], deleted: Sequence[np.ndarray], assignments: np.ndarray
) -> tuple[float, np.ndarray]:
    """The fold-mean of the headline difference and its value with each unit deleted.

    The headline difference of a fold is the mean over targets of their differences in it
    (targets that cannot be scored in the fold left out), and the run's score the mean of
    those over the scorable folds: the same two means the runs' displayed scores take.
    """
    repeats, n = assignments.shape
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN slices: unscorable folds
        head = np.nanmean(np.stack(diffs), axis=0)  # (R, K)
        # Per unit, its fold's headline with the unit deleted from every target it is in.
        stacked = np.stack(deleted)  # (T, R, N)
        in_fold = np.stack([np.take_along_axis(d, assignments, axis=1) for d in diffs])
        head_deleted = np.nanmean(np.where(np.isfinite(stacked), stacked, in_fold), axis=0)
    valid = np.isfinite(head)
    count = int(valid.sum())
    if count == 0:
        raise StatisticsError("no fold could be scored for both extractors")
    mean = float(head[valid].sum()) / count
    kept = np.take_along_axis(head, assignments, axis=1)  # (R, N): each unit's fold headline
    change = np.where(np.isfinite(kept) & np.isfinite(head_deleted), head_deleted - kept, 0.0)
    return mean, mean + change.sum(axis=0) / count


def unit_jackknife_test(
    y: Sequence[np.ndarray] | np.ndarray,
    pred_a: Sequence[np.ndarray] | np.ndarray,
    pred_b: Sequence[np.ndarray] | np.ndarray | None,
    assignments: np.ndarray,
    metric: str,
    *,
    roles: float = ROLES,
    alternative: str = "two-sided",
) -> TestResult:
    """Test the mean over targets of the fold-mean difference A − B (one target: that target).

    ``y`` is (T, N) or (N,), ``pred_a``/``pred_b`` (T, R, N) or (R, N) out-of-fold predictions
    on the plan ``assignments`` (R, N). Returns t = difference / sqrt(roles × jackknife
    variance) against Student's t with N − 1 degrees of freedom, and the matching 95 % CI.
    Without ``pred_b`` the quantity is A's own score (its CI; the test is against 0).
    """
    check_alternative(alternative)
    if metric not in LOO:
        raise StatisticsError(f"metric must be one of {', '.join(METRICS)}, not {metric!r}")
    assignments = np.asarray(assignments)
    ys = np.asarray(y, dtype=float)
    pa = np.asarray(pred_a, dtype=float)
    pb = None if pred_b is None else np.asarray(pred_b, dtype=float)
    if ys.ndim == 1:
        ys, pa = ys[None], pa[None]
        pb = None if pb is None else pb[None]
    n_targets, n = ys.shape
    if assignments.ndim != 2 or assignments.shape[1] != n:
        raise StatisticsError(f"assignments must be (repeats, {n}), got {assignments.shape}")
    expected = (n_targets, assignments.shape[0], n)
    for pred in (pa, pb):
        if pred is not None and pred.shape != expected:
            raise StatisticsError(
                f"predictions must be {expected} (targets, repeats, units), got {pred.shape}"
            )
    if n < 3:
        raise StatisticsError(f"the unit jackknife needs at least 3 units, got {n}")
    per_target = [
        fold_differences(ys[t], pa[t], None if pb is None else pb[t], assignments, metric)
        for t in range(n_targets)
    ]
    difference, without_each = fold_mean_and_deletions(
        [d for d, _ in per_target], [w for _, w in per_target], assignments
    )
    test_role = (n - 1) / n * float(((without_each - without_each.mean()) ** 2).sum())
    se = math.sqrt(roles * test_role)
    df = float(n - 1)
    notes = (
        f"unit jackknife of the fold-mean difference over {n} units ({n_targets} target(s),"
        f" {assignments.shape[0]} repeats): variance = {roles:g} × test-role jackknife"
        " (each unit is scored once per repeat and trains the others' models)"
    )
    if se == 0.0:
        # Certain: a difference of 0 gives no evidence either way; any other difference is
        # certain in its direction (p 0), and a one-sided test against it gets p 1.
        t = 0.0 if difference == 0.0 else math.copysign(math.inf, difference)
        p = 1.0 if difference == 0.0 else _t_p_value(t, df, alternative)
        return TestResult(
            "unit_jackknife", t, p, df, difference, difference, difference, n, alternative,
            notes + "; no unit changes the difference (zero variance)",
        )  # fmt: skip
    t = difference / se
    p = _t_p_value(t, df, alternative)
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, df)) * se
    return TestResult(
        "unit_jackknife", t, p, df, difference, difference - half, difference + half, n,
        alternative, notes,
    )  # fmt: skip
