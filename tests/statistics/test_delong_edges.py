"""Edges of DeLong's test (``statistics.delong``) found by mutation testing.

Without R the existing tests check the AUCs and the covariance, not z, p or the CI; here they
are recomputed from the O(m·n) definition of DeLong's covariance and scipy's normal
distribution."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from histobench.statistics import StatisticsError, delong_over_repeats, delong_test
from histobench.statistics.delong import _midrank, delong_covariance


def _brute(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[float, float, float, float]:
    """AUC_A, AUC_B, AUC_A − AUC_B and its DeLong standard error from the kernel matrix."""
    s = np.vstack([a, b])
    pos, neg = s[:, y == 1], s[:, y == 0]
    m, n = pos.shape[1], neg.shape[1]
    psi = (pos[:, :, None] > neg[:, None, :]) + 0.5 * (pos[:, :, None] == neg[:, None, :])
    aucs = psi.mean(axis=(1, 2))
    cov = np.cov(psi.mean(axis=2)) / m + np.cov(psi.mean(axis=1)) / n
    var = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    return float(aucs[0]), float(aucs[1]), float(aucs[0] - aucs[1]), math.sqrt(var)


def _data(seed: int, n: int = 50) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.4).astype(int)
    a = np.round(y * 1.2 + rng.normal(size=n), 1)  # ties within and across classes
    b = np.round(y * 0.4 + rng.normal(size=n) + 0.3 * a, 1)
    return y, a, b


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_z_p_and_ci_equal_the_definition(alternative: str) -> None:
    y, a, b = _data(21)
    auc_a, auc_b, diff, se = _brute(y, a, b)
    z = diff / se
    r = delong_test(y, a, b, alternative=alternative)
    p = {
        "two-sided": 2 * stats.norm.sf(abs(z)),
        "greater": stats.norm.sf(z),
        "less": stats.norm.cdf(z),
    }[alternative]
    half = stats.norm.ppf(0.975) * se
    assert (r.test, r.df, r.n, r.alternative) == ("delong", None, y.size, alternative)
    assert (r.auc_a, r.auc_b) == pytest.approx((auc_a, auc_b), abs=1e-14)
    assert r.auc_a == pytest.approx(roc_auc_score(y, a), abs=1e-14)
    assert r.effect_size == pytest.approx(diff, abs=1e-14)
    assert r.se == pytest.approx(se, rel=1e-10)
    assert r.statistic == pytest.approx(z, rel=1e-10)
    assert r.p_value == pytest.approx(p, rel=1e-9)
    assert 1e-4 < p < 0.9  # an informative case: neither 0 nor 1
    # The Wald CI is two-sided at 95 % whatever the alternative.
    assert (r.ci_low, r.ci_high) == pytest.approx((diff - half, diff + half), rel=1e-10)
    assert r.notes == "DeLong paired AUC test (Sun & Xu midrank algorithm), Wald CI"


def test_b_better_than_a_gives_negative_z() -> None:
    y, a, b = _data(22)
    r, swapped = delong_test(y, a, b), delong_test(y, b, a)
    assert swapped.statistic == pytest.approx(-r.statistic, rel=1e-12)
    assert swapped.p_value == pytest.approx(r.p_value, rel=1e-12)
    assert (swapped.auc_a, swapped.auc_b) == (r.auc_b, r.auc_a)
    assert delong_test(y, a, b, alternative="less").p_value == pytest.approx(
        1 - delong_test(y, a, b, alternative="greater").p_value, rel=1e-12
    )


def test_midrank_equals_scipy_rankdata_row_by_row() -> None:
    rng = np.random.default_rng(23)
    x = np.round(rng.normal(size=(3, 40)), 0)  # heavy ties
    x[1, :5] = x[1, 0]  # a tie group at the start of a row's values
    np.testing.assert_array_equal(_midrank(x), stats.rankdata(x, axis=1))
    np.testing.assert_array_equal(_midrank(np.array([[2.0, 1.0]])), [[2.0, 1.0]])


def test_covariance_of_a_single_row_is_its_variance() -> None:
    y, a, _ = _data(24)
    aucs, cov = delong_covariance(y, a[None])
    assert aucs.shape == (1,) and cov.shape == (1, 1)
    full_aucs, full_cov = delong_covariance(y, np.vstack([a, -a]))
    assert cov[0, 0] == pytest.approx(full_cov[0, 0], rel=1e-12)
    assert full_aucs[1] == pytest.approx(1 - full_aucs[0], abs=1e-14)


def test_zero_variance_results_follow_the_alternative() -> None:
    """Both perfect: difference 0, p = 1. A perfect, B perfectly inverted: the difference 1 has
    zero variance, z = +inf: p = 0 two-sided and "greater", 1 for "less"."""
    y = np.array([0, 0, 0, 1, 1, 1])
    perfect = np.array([0.1, 0.2, 0.3, 0.7, 0.8, 0.9])
    r = delong_test(y, perfect, perfect * 2)
    assert (r.statistic, r.p_value, r.effect_size, r.se) == (0.0, 1.0, 0.0, 0.0)
    assert (r.ci_low, r.ci_high) == (0.0, 0.0)
    assert r.notes.endswith("; the AUC difference has zero variance")
    for alternative, p in (("two-sided", 0.0), ("greater", 0.0), ("less", 1.0)):
        r = delong_test(y, perfect, -perfect, alternative=alternative)
        assert (r.statistic, r.p_value, r.effect_size) == (math.inf, p, 1.0)
        assert (r.auc_a, r.auc_b, r.ci_low, r.ci_high) == (1.0, 0.0, 1.0, 1.0)
    r = delong_test(y, -perfect, perfect)
    assert (r.statistic, r.p_value, r.effect_size) == (-math.inf, 0.0, -1.0)


def test_labels_and_class_counts() -> None:
    y = np.array([True, False, True, False, True])
    s1, s2 = np.array([0.9, 0.1, 0.4, 0.5, 0.6]), np.array([0.2, 0.1, 0.9, 0.3, 0.8])
    assert delong_test(y, s1, s2) == delong_test(y.astype(int), s1, s2)  # booleans are 0/1
    assert delong_test(y.astype(float), s1, s2).auc_a == pytest.approx(5 / 6)
    with pytest.raises(StatisticsError, match=r"0/1 labels, found \[0, 1, 2\]"):
        delong_test([0, 1, 2, 1, 0], s1, s2)
    with pytest.raises(StatisticsError, match=r"1-D array of 0/1 labels, got shape \(1, 5\)"):
        delong_test([[0, 1, 0, 1, 0]], s1, s2)
    with pytest.raises(StatisticsError, match="^DeLong's test needs at least 2 positive and 2"):
        delong_test([0, 1, 0, 0, 0], s1, s2)
    with pytest.raises(StatisticsError, match="got 1 and 4"):
        delong_test([0, 1, 0, 0, 0], s1, s2)
    with pytest.raises(StatisticsError, match="got 4 and 1"):
        delong_test([1, 1, 0, 1, 1], s1, s2)
    with pytest.raises(StatisticsError, match=r"y_true \(5,\), A \(4,\), B \(5,\)"):
        delong_test(y, s1[:4], s2)
    with pytest.raises(StatisticsError, match=r"y_true \(5,\), A \(5,\), B \(4,\)"):
        delong_test(y, s1, s2[:4])
    with pytest.raises(StatisticsError, match="alternative"):
        delong_test(y, s1, s2, alternative="bigger")


def test_nan_in_either_score_drops_the_patient_and_is_counted() -> None:
    y, a, b = _data(25)
    a2, b2 = a.copy(), b.copy()
    a2[3], b2[[3, 7, 9]] = np.nan, np.nan
    r = delong_test(y, a2, b2)
    keep = np.ones(y.size, bool)
    keep[[3, 7, 9]] = False
    ref = delong_test(y[keep], a[keep], b[keep])
    assert r.n == y.size - 3 and (r.statistic, r.p_value) == (ref.statistic, ref.p_value)
    assert r.notes == (
        "DeLong paired AUC test (Sun & Xu midrank algorithm), Wald CI;"
        " 3 patient(s) with NaN scores dropped"
    )
    # Dropping makes a class too small: the count is of the patients left.
    with pytest.raises(StatisticsError, match="got 1 and 3"):
        delong_test([1, 1, 0, 0, 0], [np.nan, 1, 0, 0, 0], [0, 1, 0, 0, 0])


@pytest.mark.parametrize("alternative", ["two-sided", "less"])
def test_over_repeats_fields_nan_rows_and_a_single_repeat(alternative: str) -> None:
    rng = np.random.default_rng(26)
    y, a, b = _data(26, n=40)
    sa = a + rng.normal(0, 0.3, size=(3, a.size))
    sb = b + rng.normal(0, 0.3, size=(3, b.size))
    sa[1, 5] = np.nan  # NaN in one repeat drops the patient from every repeat
    r = delong_over_repeats(y, sa, sb, alternative=alternative)
    keep = np.arange(y.size) != 5
    head = delong_test(y[keep], sa[:, keep].mean(axis=0), sb[:, keep].mean(axis=0),
                       alternative=alternative)  # fmt: skip
    assert (r.test, r.df, r.n, r.alternative) == ("delong_over_repeats", None, 39, alternative)
    for field in ("statistic", "p_value", "effect_size", "ci_low", "ci_high", "auc_a", "se"):
        assert getattr(r, field) == getattr(head, field), field
    assert r.auc_b == head.auc_b
    assert r.notes == (
        "DeLong on scores averaged over repeats (Sun & Xu midrank algorithm), Wald CI;"
        " 3 repeat(s); 1 patient(s) with NaN scores in some repeat dropped"
    )
    per = [delong_test(y[keep], sa[i, keep], sb[i, keep], alternative=alternative)
           for i in range(3)]  # fmt: skip
    for i, (got, ref) in enumerate(zip(r.per_repeat, per, strict=True)):
        assert got.notes == f"DeLong, repeat {i}" and got.alternative == alternative
        assert (got.statistic, got.p_value, got.n) == (ref.statistic, ref.p_value, ref.n)
    assert r.median_p == np.median([p.p_value for p in per])
    assert r.mean_auc_difference == pytest.approx(np.mean([p.effect_size for p in per]))
    # One repeat may come as (N,): the same as (1, N), and the headline is that repeat's test.
    one = delong_over_repeats(y, a, b)
    assert one == delong_over_repeats(y, a[None], b[None])
    assert one.statistic == delong_test(y, a, b).statistic and len(one.per_repeat) == 1
    assert one.notes.endswith("; 1 repeat(s)")


def test_over_repeats_shape_errors() -> None:
    y = np.array([0, 1, 0, 1, 0, 1])
    s = np.zeros((2, 6))
    for sa, sb in ((s, s[:, :5]), (s[:, :5], s[:, :5]), (s, s[:1]), (s[None], s[None])):
        with pytest.raises(StatisticsError, match=r"matching y_true \(6 patients\)"):
            delong_over_repeats(y, sa, sb)
    with pytest.raises(
        StatisticsError, match="^DeLong's test needs at least 2 positive .* 0 and 3"
    ):
        delong_over_repeats(y, np.where(y == 1, np.nan, 0.0)[None], s[:1])
    with pytest.raises(StatisticsError, match="alternative"):
        delong_over_repeats(y, s, s, alternative="bigger")
