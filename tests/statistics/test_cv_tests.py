"""Paired CV tests against hand-computed answers and scipy references."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats

from histobench.statistics import (
    StatisticsError,
    TestResult,
    corrected_resampled_ttest,
    naive_paired_ttest,
    paired_permutation_test,
    wilcoxon_signed_rank,
)

# --------------------------------------------------------------------------------------------
# corrected resampled t-test
# --------------------------------------------------------------------------------------------


def test_corrected_ttest_worked_example() -> None:
    # d = [[0.1, 0.2], [0.0, 0.3]]: mean 0.15, var(ddof=1) = 0.05/3, J = 4, n_test/n_train = 1/4
    # se = sqrt((1/4 + 1/4) · 0.05/3) = sqrt(1/120), so t = 0.15 · sqrt(120) = 1.643168
    a = np.array([[0.9, 0.8], [0.7, 0.9]])
    b = a - np.array([[0.1, 0.2], [0.0, 0.3]])
    r = corrected_resampled_ttest(a, b, n_train=80, n_test=20)
    assert r.statistic == pytest.approx(0.15 * math.sqrt(120), rel=1e-12)
    assert r.statistic == pytest.approx(1.6431677, rel=1e-7)
    assert r.df == 3
    assert r.n == 4
    assert r.p_value == pytest.approx(2 * stats.t.sf(1.6431677, 3), rel=1e-6)
    assert r.effect_size == pytest.approx(0.15)
    half = 3.182446305284263 * math.sqrt(1 / 120)  # t_{0.975, 3} · corrected se
    assert (r.ci_low, r.ci_high) == pytest.approx((0.15 - half, 0.15 + half), rel=1e-9)
    assert r.alternative == "two-sided"
    assert isinstance(r, TestResult)


def test_corrected_is_naive_scaled_by_the_variance_correction() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(0.8, 0.05, size=(10, 5))
    b = a - rng.normal(0.01, 0.02, size=(10, 5))
    naive = naive_paired_ttest(a, b)
    corr = corrected_resampled_ttest(a, b, n_train=400, n_test=100)
    j = 50
    assert corr.statistic == pytest.approx(naive.statistic * math.sqrt((1 / j) / (1 / j + 0.25)))
    assert corr.p_value > naive.p_value
    assert corr.ci_high - corr.ci_low > naive.ci_high - naive.ci_low


def test_naive_ttest_equals_scipy_ttest_rel() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(4, 5)), rng.normal(size=(4, 5))
    ref = stats.ttest_rel(a.ravel(), b.ravel())
    r = naive_paired_ttest(a, b)
    assert r.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert r.p_value == pytest.approx(ref.pvalue, rel=1e-12)
    ci = ref.confidence_interval(0.95)
    assert (r.ci_low, r.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-10)
    for alt in ("greater", "less"):
        assert naive_paired_ttest(a, b, alternative=alt).p_value == pytest.approx(
            stats.ttest_rel(a.ravel(), b.ravel(), alternative=alt).pvalue, rel=1e-12
        )


def test_corrected_one_sided_is_half_the_two_sided() -> None:
    a = np.array([[0.9, 0.8, 0.85], [0.7, 0.9, 0.8]])
    b = a - np.array([[0.1, 0.2, 0.05], [0.0, 0.3, 0.1]])
    two = corrected_resampled_ttest(a, b, 60, 30)
    assert corrected_resampled_ttest(a, b, 60, 30, alternative="greater").p_value == (
        pytest.approx(two.p_value / 2)
    )
    assert corrected_resampled_ttest(a, b, 60, 30, alternative="less").p_value == pytest.approx(
        1 - two.p_value / 2
    )


def test_zero_variance_differences_give_p_one_without_nan() -> None:
    a = np.full((3, 5), 0.9)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning from 0/0 either
        r = corrected_resampled_ttest(a, a.copy(), 80, 20)
        n = naive_paired_ttest(a, a.copy())
    assert (r.statistic, r.p_value, r.effect_size) == (0.0, 1.0, 0.0)
    assert n.p_value == 1.0
    assert "zero" in r.notes
    shifted = corrected_resampled_ttest(a, a - 0.01, 80, 20)
    assert shifted.statistic == math.inf and shifted.p_value == 0.0
    assert "constant" in shifted.notes


def test_nan_folds_are_dropped_and_counted() -> None:
    a = np.array([[0.9, np.nan, 0.8], [0.7, 0.9, 0.8]])
    b = np.array([[0.8, 0.7, 0.8], [0.6, 0.9, 0.75]])
    r = corrected_resampled_ttest(a, b, 60, 30)
    assert r.n == 5
    assert "dropped" in r.notes
    keep = np.isfinite(a)
    ref = corrected_resampled_ttest(a[keep], b[keep], 60, 30)
    assert r.statistic == pytest.approx(ref.statistic)


def test_corrected_ttest_input_errors_are_histobench_errors() -> None:
    with pytest.raises(StatisticsError, match="same shape"):
        corrected_resampled_ttest(np.zeros((2, 5)), np.zeros((2, 4)), 80, 20)
    with pytest.raises(StatisticsError, match="positive"):
        corrected_resampled_ttest(np.zeros((2, 5)), np.ones((2, 5)), 0, 20)
    with pytest.raises(StatisticsError, match="at least 2"):
        corrected_resampled_ttest(np.array([[0.9]]), np.array([[0.8]]), 80, 20)
    with pytest.raises(StatisticsError, match="alternative"):
        naive_paired_ttest([1.0, 2.0], [0.0, 1.0], alternative="bigger")


def test_to_dict_is_json_ready() -> None:
    import json

    a = np.full((2, 3), 0.9)
    r = corrected_resampled_ttest(a, a - 0.01, 80, 20)  # statistic = inf
    d = r.to_dict()
    assert d["statistic"] is None and d["test"] == "corrected_resampled_ttest"
    json.dumps(d, allow_nan=False)


# --------------------------------------------------------------------------------------------
# Wilcoxon signed-rank over repeats
# --------------------------------------------------------------------------------------------

# Each case drives one branch of scipy's method="auto"; the notes name the branch taken.
_CASES = {
    "exact": np.arange(1.0, 11.0) * [1, -1, 1, 1, -1, 1, 1, 1, -1, 1],
    "enumeration": np.array([0.02, -0.01, 0.02, 0.0, 0.03, 0.01, -0.02, 0.04]),
    "normal approximation": np.random.default_rng(3).normal(0.2, 1.0, 60),
    "tie correction": np.round(np.random.default_rng(4).normal(0.1, 1.0, 30), 1),
}


@pytest.mark.parametrize("case", list(_CASES))
@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_wilcoxon_equals_scipy(case: str, alternative: str) -> None:
    d = _CASES[case]
    b = np.full(d.size, 0.5)  # one base value keeps tied differences exactly tied
    a = b + d
    ref = stats.wilcoxon(a, b, alternative=alternative)
    r = wilcoxon_signed_rank(a, b, alternative=alternative)
    assert r.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert r.p_value == pytest.approx(ref.pvalue, rel=1e-9)
    assert r.n == d.size
    assert case in r.notes


def test_wilcoxon_hodges_lehmann_worked_example() -> None:
    # Walsh averages of d = [1, 2, 4]: 1, 1.5, 2, 2.5, 3, 4 -> pseudo-median 2.25; with n = 3 a
    # 95 % CI is not attainable, so the full range is given and the notes say so.
    r = wilcoxon_signed_rank([2.0, 3.0, 5.0], [1.0, 1.0, 1.0])
    assert r.effect_size == 2.25
    assert (r.ci_low, r.ci_high) == (1.0, 4.0)
    assert "not attainable" in r.notes
    assert r.p_value == 0.25  # exact: P(W+ = 6) = 1/8, doubled
    assert "unattainable" in r.notes  # p < 0.05 cannot happen with 3 repeats


def test_wilcoxon_ci_equals_r_wilcox_test() -> None:
    # R 4.x: x <- c(...); wilcox.test(x, conf.int=TRUE) -> estimate -0.0168687533186075,
    # conf.int -0.627229569399175 0.64874633334576, p = 1 (set.seed(3); x <- rnorm(10)).
    x = np.array(
        [-0.961933415919883, -0.292525722878467, 0.258788216241251, -1.15213188591513,
         0.195782826286375, 0.0301239446016315, 0.0854177316122717, 1.11661021271527,
         -1.21885741557799, 1.26736872208989]
    )  # fmt: skip
    r = wilcoxon_signed_rank(x, np.zeros(10))
    assert r.effect_size == pytest.approx(-0.0168687533186075, abs=1e-12)
    assert (r.ci_low, r.ci_high) == pytest.approx((-0.627229569399175, 0.64874633334576))
    assert r.p_value == pytest.approx(1.0)


def test_wilcoxon_needs_two_repeats() -> None:
    with pytest.raises(StatisticsError) as info:
        wilcoxon_signed_rank([0.9], [0.8])
    message = str(info.value)
    assert "at least 2 repeats" in message and "\n" not in message


def test_wilcoxon_all_zero_differences() -> None:
    r = wilcoxon_signed_rank([0.9, 0.8, 0.7], [0.9, 0.8, 0.7])
    assert (r.statistic, r.p_value, r.effect_size) == (0.0, 1.0, 0.0)


# --------------------------------------------------------------------------------------------
# paired permutation test
# --------------------------------------------------------------------------------------------


def _scipy_permutation(a: np.ndarray, b: np.ndarray, alternative: str) -> float:
    res = stats.permutation_test(
        (a, b),
        lambda x, y, axis=-1: np.mean(x - y, axis=axis),
        permutation_type="samples",
        n_resamples=np.inf,
        alternative=alternative,
    )
    return float(res.pvalue)


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_exact_permutation_equals_scipy(alternative: str) -> None:
    rng = np.random.default_rng(5)
    a = rng.normal(0.8, 0.05, 9)
    b = a - rng.normal(0.02, 0.03, 9)
    r = paired_permutation_test(a, b, alternative=alternative)
    assert "exact" in r.notes
    assert r.p_value == pytest.approx(_scipy_permutation(a, b, alternative), rel=1e-12)
    assert r.effect_size == pytest.approx(np.mean(a - b))


def test_permutation_worked_example() -> None:
    # d = [1, 1, 1]: of the 8 sign vectors only +++ and --- reach |mean| = 1, so p = 2/8.
    assert paired_permutation_test([2.0, 2.0, 2.0], [1.0, 1.0, 1.0]).p_value == 0.25
    # All differences zero: every sign vector ties with the observed mean, p = 1.
    assert paired_permutation_test([1.0, 2.0], [1.0, 2.0]).p_value == 1.0


def test_monte_carlo_permutation_is_seeded_and_close_to_exact() -> None:
    rng = np.random.default_rng(6)
    a = rng.normal(0.8, 0.05, 16)
    b = a - rng.normal(0.015, 0.03, 16)
    exact = paired_permutation_test(a, b, n_permutations=2**16)
    mc = paired_permutation_test(a, b, n_permutations=4000, seed=1)
    assert "exact" in exact.notes and "Monte Carlo" in mc.notes
    assert mc.p_value == paired_permutation_test(a, b, n_permutations=4000, seed=1).p_value
    se = math.sqrt(exact.p_value * (1 - exact.p_value) / 4000)
    assert abs(mc.p_value - exact.p_value) < 4 * se + 1 / 4001


def test_monte_carlo_p_value_is_never_zero() -> None:
    a = np.linspace(1.0, 2.0, 30)
    r = paired_permutation_test(a, a - 1.0, n_permutations=99, seed=0)
    # One-sided: (1 + 0) / (1 + 99); two-sided doubles the smaller tail, as scipy does.
    assert r.p_value == pytest.approx(2 / 100)
    greater = paired_permutation_test(a, a - 1.0, n_permutations=99, seed=0, alternative="greater")
    assert greater.p_value == pytest.approx(1 / 100)


def test_permutation_needs_two_pairs() -> None:
    with pytest.raises(StatisticsError, match="at least 2"):
        paired_permutation_test([0.9], [0.8])
