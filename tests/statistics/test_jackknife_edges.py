"""Edges of the unit jackknife (``statistics.jackknife``) found by mutation testing.

Every value is checked against a brute-force recomputation (scikit-learn's AUC, numpy's
Pearson r, scipy's t distribution) or against a case whose answer is known by construction
(perfectly separating scores, identical extractors), never against the module itself.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from histobench.statistics import StatisticsError
from histobench.statistics.jackknife import (
    auc_without_each,
    fold_differences,
    fold_mean_and_deletions,
    pearson_without_each,
    unit_jackknife_test,
)


def _score(metric: str, y: np.ndarray, s: np.ndarray) -> float:
    """A fold's metric from scratch; NaN where the fold cannot be scored."""
    if metric == "auc":
        return float(roc_auc_score(y, s)) if 0 < (y > 0.5).sum() < y.size else math.nan
    return float(np.corrcoef(s, y)[0, 1]) if y.size >= 3 else math.nan


def _brute(
    y: np.ndarray, pa: np.ndarray, pb: np.ndarray | None, assign: np.ndarray, metric: str
) -> tuple[np.ndarray, np.ndarray]:
    """Fold differences (R, K) and each scored unit's fold difference without it (R, N).

    A unit is scored when its label and its predictions in every repeat are finite; a
    deletion that leaves its fold unscorable leaves the fold's difference unchanged."""
    repeats, n = assign.shape
    folds = int(assign.max()) + 1
    ok = np.isfinite(y) & np.isfinite(pa).all(axis=0)
    if pb is not None:
        ok &= np.isfinite(pb).all(axis=0)

    def diff(r: int, m: np.ndarray) -> float:
        b = 0.0 if pb is None else _score(metric, y[m], pb[r, m])
        return _score(metric, y[m], pa[r, m]) - b

    head = np.full((repeats, folds), math.nan)
    deleted = np.full((repeats, n), math.nan)
    for r in range(repeats):
        for k in range(folds):
            m = (assign[r] == k) & ok
            if not m.any():
                continue
            head[r, k] = diff(r, m)
            if not math.isfinite(head[r, k]):
                head[r, k] = math.nan
                continue
            for i in np.flatnonzero(m):
                without = m.copy()
                without[i] = False
                d = diff(r, without)
                deleted[r, i] = d if math.isfinite(d) else head[r, k]
    return head, deleted


def _plan(rng: np.random.Generator, repeats: int, n: int, folds: int) -> np.ndarray:
    return np.stack([rng.permutation(np.arange(n) % folds) for _ in range(repeats)])


@pytest.mark.parametrize("metric", ["auc", "pearson_r"])
def test_a_single_run_without_b_is_its_own_fold_scores_and_deletions(metric: str) -> None:
    """Without ``pred_b`` the differences are A's own scores (B counts as 0, also in the
    deletions), equal to a recomputation from scratch."""
    rng = np.random.default_rng(11)
    repeats, n = 2, 24
    assign = _plan(rng, repeats, n, 3)
    y = (rng.random(n) < 0.5).astype(float) if metric == "auc" else rng.normal(size=n)
    pa = y + rng.normal(size=(repeats, n))
    diff, deleted = fold_differences(y, pa, None, assign, metric)
    ref_diff, ref_deleted = _brute(y, pa, None, assign, metric)
    assert diff.shape == (repeats, 3) and deleted.shape == (repeats, n)
    np.testing.assert_allclose(diff, ref_diff, atol=1e-12)
    np.testing.assert_allclose(deleted, ref_deleted, atol=1e-12)


def test_empty_and_unscorable_folds_do_not_stop_the_later_folds() -> None:
    """A fold with no scored unit, or one that cannot be scored (one class), is NaN and the
    folds after it in the same repeat are still scored (``continue``, not ``break``)."""
    rng = np.random.default_rng(12)
    n = 30
    assign = np.stack([np.arange(n) % 3, (np.arange(n) // 10) % 3])
    y = (rng.random(n) < 0.5).astype(float)
    y[assign[1] == 0] = np.nan  # repeat 1, fold 0: no labelled unit at all
    y[(assign[1] == 1)] = 1.0  # repeat 1, fold 1: positives only
    y[np.flatnonzero(assign[1] == 2)[:5]] = 0.0  # repeat 1, fold 2: both classes
    y[np.flatnonzero(assign[1] == 2)[5:]] = 1.0
    pa, pb = rng.normal(size=(2, 2, n))
    diff, deleted = fold_differences(y, pa, pb, assign, "auc")
    ref_diff, ref_deleted = _brute(y, pa, pb, assign, "auc")
    assert np.isnan(diff[1, 0]) and np.isnan(diff[1, 1]) and np.isfinite(diff[1, 2])
    np.testing.assert_allclose(diff, ref_diff, atol=1e-12)
    np.testing.assert_allclose(deleted, ref_deleted, atol=1e-12)
    # The fold-mean skips the two NaN folds of repeat 1: 4 scored folds. A unit's deletion
    # changes only the scored folds it is in (units 0-19 sit in a NaN fold of repeat 1).
    mean, without = fold_mean_and_deletions([diff], [deleted], assign)
    assert mean == pytest.approx(np.nansum(ref_diff) / 4, abs=1e-14)
    for i in range(n):
        head = ref_diff.copy()
        for r in range(2):
            if np.isfinite(ref_deleted[r, i]):
                head[r, assign[r, i]] = ref_deleted[r, i]
        assert without[i] == pytest.approx(np.nansum(head) / 4, abs=1e-14), i


def test_a_unit_without_a_prediction_in_one_repeat_is_left_out_of_every_repeat() -> None:
    """NaN in one repeat of A or of B removes the unit from the scoring (the fold is not made
    NaN), for both extractors."""
    rng = np.random.default_rng(13)
    repeats, n = 3, 27
    assign = _plan(rng, repeats, n, 3)
    y = rng.normal(size=n)
    pa = y + rng.normal(size=(repeats, n))
    pb = y + rng.normal(size=(repeats, n))
    pa[1, 4] = np.nan
    pb[2, 9] = np.nan
    diff, deleted = fold_differences(y, pa, pb, assign, "pearson_r")
    assert np.isfinite(diff).all()
    ref_diff, ref_deleted = _brute(y, pa, pb, assign, "pearson_r")
    np.testing.assert_allclose(diff, ref_diff, atol=1e-12)
    np.testing.assert_allclose(deleted, ref_deleted, atol=1e-12)
    assert np.isnan(deleted[:, [4, 9]]).all()


def test_pearson_folds_of_three_are_scored_and_of_two_are_not() -> None:
    x, y = np.array([0.3, -1.0, 2.0]), np.array([1.0, 0.5, 2.5])
    full, loo = pearson_without_each(x, y)
    assert full == pytest.approx(np.corrcoef(x, y)[0, 1], abs=1e-14)
    assert loo.shape == (3,)
    full, loo = pearson_without_each(x[:2], y[:2])
    assert math.isnan(full) and loo.shape == (2,) and np.isnan(loo).all()


def test_auc_of_a_one_class_fold_is_nan_with_one_nan_per_unit() -> None:
    s = np.array([0.1, 0.4, 0.2])
    for y in (np.ones(3), np.zeros(3)):
        full, loo = auc_without_each(s, y)
        assert math.isnan(full) and loo.shape == (3,) and np.isnan(loo).all()


def test_no_scorable_fold_is_an_error() -> None:
    assign = np.array([[0, 0, 1, 1]])
    diff = np.full((1, 2), np.nan)
    with pytest.raises(StatisticsError, match="no fold could be scored"):
        fold_mean_and_deletions([diff], [np.full((1, 4), np.nan)], assign)
    with pytest.raises(StatisticsError, match="no fold could be scored"):
        unit_jackknife_test(np.ones(4), np.zeros((1, 4)), None, assign, "auc")


def _case(seed: int = 14) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    repeats, n = 3, 36
    assign = _plan(rng, repeats, n, 4)
    y = (rng.random(n) < 0.5).astype(float)
    pa = 0.8 * y + rng.normal(size=(repeats, n))
    pb = 0.2 * y + rng.normal(size=(repeats, n))
    return y, pa, pb, assign


def _by_hand(
    y: np.ndarray, pa: np.ndarray, pb: np.ndarray, assign: np.ndarray, metric: str
) -> tuple[float, float, float]:
    """Difference, standard error and df from the brute-force fold and deletion values."""
    head, deleted = _brute(y, pa, pb, assign, metric)
    n = assign.shape[1]
    valid = np.isfinite(head)
    mean = head[valid].mean()
    without = np.empty(n)
    for i in range(n):
        h = head.copy()
        for r in range(assign.shape[0]):
            if math.isfinite(deleted[r, i]) and valid[r, assign[r, i]]:
                h[r, assign[r, i]] = deleted[r, i]
        without[i] = h[valid].mean()
    var = (n - 1) / n * ((without - without.mean()) ** 2).sum()
    return float(mean), math.sqrt(2.0 * var), float(n - 1)


@pytest.fixture(scope="module")
def auc_case() -> tuple[tuple[np.ndarray, ...], tuple[float, float, float]]:
    """One AUC comparison and its brute-force difference, standard error and df."""
    data = _case()
    return data, _by_hand(*data, "auc")


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_statistic_p_value_and_ci_equal_the_hand_computation(
    alternative: str, auc_case: tuple[tuple[np.ndarray, ...], tuple[float, float, float]]
) -> None:
    (y, pa, pb, assign), (diff, se, df) = auc_case
    t = diff / se
    res = unit_jackknife_test(y, pa, pb, assign, "auc", alternative=alternative)
    p = {
        "two-sided": 2 * stats.t.sf(abs(t), df),
        "greater": stats.t.sf(t, df),
        "less": stats.t.cdf(t, df),
    }[alternative]
    half = stats.t.ppf(0.975, df) * se
    assert res.test == "unit_jackknife" and res.alternative == alternative
    assert res.n == y.size and res.df == df
    assert res.effect_size == pytest.approx(diff, abs=1e-14)
    assert res.statistic == pytest.approx(t, rel=1e-10)
    assert res.p_value == pytest.approx(p, rel=1e-9)
    # The CI is two-sided at 95 % whatever the alternative.
    assert (res.ci_low, res.ci_high) == pytest.approx((diff - half, diff + half), rel=1e-10)
    assert "2 × test-role jackknife" in res.notes
    assert 0.0 < p < 1.0 and se > 0


def test_several_targets_are_averaged_per_fold() -> None:
    """(T, R, N) input: the headline is the fold-mean of the per-fold mean over targets, and
    one target given as (N,) equals the same target given as (1, R, N)."""
    rng = np.random.default_rng(15)
    repeats, n, targets = 2, 30, 3
    assign = _plan(rng, repeats, n, 3)
    y = rng.normal(size=(targets, n))
    pa = y[:, None, :] + rng.normal(size=(targets, repeats, n))
    pb = 0.5 * y[:, None, :] + rng.normal(size=(targets, repeats, n))
    res = unit_jackknife_test(y, pa, pb, assign, "pearson_r")
    heads = [_brute(y[t], pa[t], pb[t], assign, "pearson_r")[0] for t in range(targets)]
    assert res.effect_size == pytest.approx(np.mean(heads), abs=1e-13)
    assert res.n == n and "3 target(s)" in res.notes and "2 repeats" in res.notes
    one = unit_jackknife_test(y[1], pa[1], pb[1], assign, "pearson_r")
    same = unit_jackknife_test(y[1:2], pa[1:2], pb[1:2], assign, "pearson_r")
    assert one == same
    diff, se, _ = _by_hand(y[1], pa[1], pb[1], assign, "pearson_r")
    assert one.effect_size == pytest.approx(diff, abs=1e-13)
    assert one.statistic == pytest.approx(diff / se, rel=1e-9)


def test_zero_variance_results() -> None:
    """Identical extractors: difference 0, p = 1. Perfectly separating A against perfectly
    inverted B: every fold and every deletion differs by exactly 1, so the variance is 0 and
    the difference is certain (p = 0, t = ±inf, CI a point)."""
    rng = np.random.default_rng(16)
    repeats, n = 2, 20
    assign = _plan(rng, repeats, n, 2)
    y = (np.arange(n) % 2).astype(float)
    same = rng.normal(size=(repeats, n))
    res = unit_jackknife_test(y, same, same.copy(), assign, "auc", alternative="less")
    assert (res.statistic, res.p_value, res.effect_size) == (0.0, 1.0, 0.0)
    assert (res.ci_low, res.ci_high, res.df, res.n) == (0.0, 0.0, n - 1, n)
    assert res.alternative == "less" and res.test == "unit_jackknife"
    assert res.notes.endswith("no unit changes the difference (zero variance)")

    perfect = np.tile(y + 0.01 * np.arange(n), (repeats, 1))
    for a, b, sign in ((perfect, -perfect, 1.0), (-perfect, perfect, -1.0)):
        res = unit_jackknife_test(y, a, b, assign, "auc")
        assert res.effect_size == sign and res.statistic == sign * math.inf
        assert res.p_value == 0.0 and (res.ci_low, res.ci_high) == (sign, sign)
        assert res.df == n - 1 and res.alternative == "two-sided"


def test_input_checks() -> None:
    assign = np.zeros((2, 10), dtype=int)
    with pytest.raises(StatisticsError, match=r"assignments must be \(repeats, 10\)"):
        unit_jackknife_test(np.zeros(10), np.zeros((2, 10)), None, assign[0], "auc")
    with pytest.raises(StatisticsError, match=r"assignments must be \(repeats, 10\)"):
        unit_jackknife_test(np.zeros(10), np.zeros((2, 10)), None, assign[:, :9], "auc")
    with pytest.raises(StatisticsError, match=r"predictions must be \(1, 2, 10\)"):
        unit_jackknife_test(np.zeros(10), np.zeros((2, 10)), np.zeros((2, 9)), assign, "auc")
    with pytest.raises(StatisticsError, match="at least 3 units, got 2"):
        unit_jackknife_test(np.zeros(2), np.zeros((2, 2)), None, assign[:, :2], "auc")
    with pytest.raises(ValueError, match="alternative"):
        unit_jackknife_test(np.zeros(10), np.zeros((2, 10)), None, assign, "auc",
                            alternative="bigger")  # fmt: skip
    # Three units are enough.
    y = np.array([0.0, 1.0, 1.0])
    res = unit_jackknife_test(y, np.array([[0.1, 0.7, 0.3]]), None, np.zeros((1, 3), int), "auc")
    assert res.n == 3 and res.effect_size == 1.0


def test_auc_deletions_with_two_negatives_and_one_positive_equal_recomputation() -> None:
    """Deleting one of two negatives leaves a scorable fold (one negative): a real AUC, not the
    "unchanged" fallback; the sole positive's deletion is unscorable (NaN)."""
    y = np.array([1.0, 0.0, 1.0, 0.0, 1.0, 1.0])
    s = np.array([0.9, 0.3, 0.2, 0.5, 0.5, 0.7])
    full, loo = auc_without_each(s, y)
    assert full == pytest.approx(roc_auc_score(y, s), abs=1e-14)
    brute = [roc_auc_score(np.delete(y, i), np.delete(s, i)) for i in range(y.size)]
    np.testing.assert_allclose(loo, brute, atol=1e-14)
    y1 = np.array([0.0, 0.0, 1.0, 0.0])
    full, loo = auc_without_each(np.array([0.1, 0.6, 0.5, 0.2]), y1)
    assert full == pytest.approx(2 / 3) and math.isnan(loo[2])
    np.testing.assert_allclose(loo[[0, 1, 3]], [0.5, 1.0, 0.5], atol=1e-14)


def test_unscorable_folds_and_deletions_are_silent() -> None:
    """0/0 in a fold (constant predictions, a single positive) is an expected NaN, handled by
    the fallback; it must not print RuntimeWarnings in every run."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        full, loo = pearson_without_each(np.ones(5), np.arange(5.0))
        assert math.isnan(full) and np.isnan(loo).all()
        full, loo = pearson_without_each(np.array([1.0, 1.0, 1.0, 3.0]), np.arange(4.0))
        assert math.isfinite(full) and math.isnan(loo[3]) and np.isfinite(loo[:3]).all()
        full, loo = auc_without_each(np.array([0.1, 0.6, 0.5]), np.array([0.0, 1.0, 0.0]))
        assert full == 1.0 and math.isnan(loo[1])
        full, loo = auc_without_each(np.array([0.1, 0.6, 0.5]), np.array([1.0, 0.0, 1.0]))
        assert full == 0.0 and math.isnan(loo[1])


@pytest.mark.parametrize(
    ("alternative", "p_if_a_better", "p_if_a_worse"),
    [("two-sided", 0.0, 0.0), ("greater", 0.0, 1.0), ("less", 1.0, 0.0)],
)
def test_zero_variance_one_sided_p_follows_the_direction(
    alternative: str, p_if_a_better: float, p_if_a_worse: float
) -> None:
    """A certain difference is significant only in its own direction: a one-sided test
    against it gets p = 1, not 0."""
    rng = np.random.default_rng(21)
    repeats, n = 2, 20
    assign = _plan(rng, repeats, n, 2)
    y = (np.arange(n) % 2).astype(float)
    perfect = np.tile(y + 0.01 * np.arange(n), (repeats, 1))
    better = unit_jackknife_test(y, perfect, -perfect, assign, "auc", alternative=alternative)
    worse = unit_jackknife_test(y, -perfect, perfect, assign, "auc", alternative=alternative)
    assert (better.p_value, worse.p_value) == (p_if_a_better, p_if_a_worse)
    assert (better.statistic, worse.statistic) == (math.inf, -math.inf)


def test_pearson_deletions_of_a_three_unit_fold_are_unscorable() -> None:
    """Deleting one of three units leaves two points, whose r is ±1 whatever the model: the
    deletion must not be scored (NaN), so the fold keeps its difference in the jackknife."""
    x, y = np.array([0.3, -1.0, 2.0]), np.array([1.0, 0.5, 2.5])
    full, loo = pearson_without_each(x, y)
    assert full == pytest.approx(np.corrcoef(x, y)[0, 1], abs=1e-14)
    assert np.isnan(loo).all()
    four_x, four_y = np.append(x, 0.7), np.append(y, -0.2)
    _, loo4 = pearson_without_each(four_x, four_y)
    brute = [np.corrcoef(np.delete(four_x, i), np.delete(four_y, i))[0, 1] for i in range(4)]
    np.testing.assert_allclose(loo4, brute, atol=1e-13)
