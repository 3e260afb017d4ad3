"""LUAD scoring helpers at their edges: small n, the significance rules' boundaries, rounding,
quiet NaN handling. Found unchecked by mutation testing (see TESTING.md, "Mutation testing")."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from histobench.tasks.luad.scoring import (
    auc,
    fold_aucs,
    masked_pearson,
    none_if_nan,
    pearson_with_p,
    significant,
)

# --------------------------------------------------------------------------------------------
# The significance rule
# --------------------------------------------------------------------------------------------


def test_significance_is_strict_unless_inclusive() -> None:
    at_alpha = np.array([0.05, 0.05, 0.05])
    for rule in ("all", "majority", "median"):
        assert not significant(at_alpha, 0.05, rule)  # type: ignore[arg-type]  # p < alpha
        assert significant(at_alpha, 0.05, rule, inclusive=True)  # type: ignore[arg-type]


def test_majority_needs_more_than_half_of_the_repeats() -> None:
    assert not significant(np.array([0.01, 0.01, 0.2, 0.3]), 0.05, "majority")  # 2 of 4
    assert significant(np.array([0.01, 0.01, 0.01, 0.3]), 0.05, "majority")


def test_median_rule_uses_the_median_p_value() -> None:
    assert significant(np.array([0.01, 0.9, 0.04]), 0.05, "median")  # median 0.04
    assert not significant(np.array([0.01, 0.9, 0.06]), 0.05, "median")  # median 0.06
    # Differs from "majority" where repeats are split evenly: median of 0.01, 0.01, 0.3, 0.3.
    assert not significant(np.array([0.01, 0.01, 0.3, 0.3]), 0.05, "median")
    assert not significant(np.array([0.01, np.nan, np.nan]), 0.05, "median")  # NaN counts as 1


def test_none_if_nan_replaces_every_non_finite_value() -> None:
    assert none_if_nan(np.array([[0.5, np.nan], [np.inf, -1.0]])) == [0.5, None, None, -1.0]


# --------------------------------------------------------------------------------------------
# Pearson r and its p-value
# --------------------------------------------------------------------------------------------


def test_three_values_are_scored_with_one_degree_of_freedom() -> None:
    y = np.array([0.3, 1.1, 2.9])
    p = np.array([0.2, 1.5, 2.0])
    ref = stats.pearsonr(y, p)
    r, pv = masked_pearson(y[:, None], p[:, None], "two-sided")  # default min_n = 3
    assert r[0] == pytest.approx(ref.statistic) and pv[0] == pytest.approx(ref.pvalue, rel=1e-9)
    r1, p1 = pearson_with_p(y, p[None, :], "two-sided")
    assert p1[0] == pytest.approx(ref.pvalue, rel=1e-9)


def test_columns_below_min_n_are_not_scored_even_with_variance() -> None:
    Y = np.array([[1.0, 1.0], [2.0, 2.0], [np.nan, 3.0], [np.nan, 5.0]])
    P = np.array([[0.5, 0.1], [0.9, 0.4], [0.2, 0.2], [0.3, 0.9]])
    r, p = masked_pearson(Y, P, "two-sided")
    assert np.isnan(r[0]) and np.isnan(p[0])  # two values: r = ±1 is no evidence
    assert r[1] == pytest.approx(stats.pearsonr(Y[:, 1], P[:, 1]).statistic)


def test_small_scale_values_are_scored_like_any_others() -> None:
    # r is scale-free: values of order 1e-3 (sum of squares far below 1) must give the same r.
    rng = np.random.default_rng(0)
    y = rng.normal(size=12)
    p = y + rng.normal(size=12)
    ref = stats.pearsonr(y, p)
    r, _ = pearson_with_p(1e-3 * y, 1e-3 * p[None, :], "two-sided")
    rm, _ = masked_pearson(1e-3 * y[:, None], 1e-3 * p[:, None], "two-sided")
    assert r[0] == pytest.approx(ref.statistic) and rm[0] == pytest.approx(ref.statistic)


def test_pearson_one_sided_p_value() -> None:
    rng = np.random.default_rng(1)
    y = rng.normal(size=20)
    p = y + 2 * rng.normal(size=20)
    _, pv = pearson_with_p(y, p[None, :], "greater")
    assert pv[0] == pytest.approx(stats.pearsonr(y, p, alternative="greater").pvalue)


@pytest.mark.parametrize(
    ("y", "slope"),
    [
        # Exact linear relations whose r rounds to 1 ± 2.2e-16 in one of the two formulas.
        ([-1.47, 1.03, -1.93, -0.24, -0.2, -1.04], 1.7538239949444947),
        ([-0.24, 1.82, -0.05], -5.155994404882088),
        ([0.82, 0.33, -1.3, 0.91, 0.45], 8.294255678822374),
        ([-1.18, 0.16, -2.14, -0.0, 0.9, -0.24, -0.63, 0.23], -9.415248457852828),
    ],
)
def test_r_of_an_exact_linear_relation_is_exactly_one(y: list[float], slope: float) -> None:
    yv = np.array(y)
    pv = slope * yv + 0.3
    r, _ = pearson_with_p(yv, pv[None, :], "two-sided")
    rm, _ = masked_pearson(yv[:, None], pv[:, None], "two-sided")
    assert r[0] == rm[0] == math.copysign(1.0, slope)  # never outside [-1, 1]


def test_unscoreable_columns_and_rows_raise_no_warnings() -> None:
    Y = np.array([[1.0, np.nan, 1.0], [2.0, np.nan, np.nan], [3.0, np.nan, np.nan]])
    P = np.array([[1.0, 0.2, 0.3], [1.0, 0.1, 0.4], [1.0, 0.5, 0.6]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # NaN is the answer; no RuntimeWarning on the way
        r, p = masked_pearson(Y, P, "two-sided")  # constant P, no values, one value
        r1, p1 = pearson_with_p(Y[:, 0], P[:, :1].T, "two-sided")  # constant prediction
        a = auc(np.array([1, 1, 1]), np.array([0.2, 0.5, 0.1]))  # one class only
    assert np.isnan(r).all() and np.isnan(p).all()
    assert np.isnan(r1[0]) and np.isnan(p1[0]) and math.isnan(a)


# --------------------------------------------------------------------------------------------
# AUC
# --------------------------------------------------------------------------------------------


def test_auc_with_a_single_negative_or_positive() -> None:
    y = np.array([1, 1, 0, 1])
    s = np.array([0.9, 0.2, 0.5, 0.7])
    assert auc(y, s) == pytest.approx(roc_auc_score(y, s))  # 2 of 3 positives above it
    assert auc(1 - y, s) == pytest.approx(roc_auc_score(1 - y, s))


def test_fold_aucs_are_float_with_nan_for_a_fold_without_test_units() -> None:
    y = np.array([0, 1, 0, 1, 0, 1])
    prob = np.array([[0.1, 0.9, 0.2, 0.8, 0.3, 0.7]])
    out = fold_aucs(y, prob, np.array([[0, 0, 1, 1, 0, 1]]), folds=3)
    assert out.dtype == np.float64
    assert out[0, :2].tolist() == [1.0, 1.0] and math.isnan(out[0, 2])
