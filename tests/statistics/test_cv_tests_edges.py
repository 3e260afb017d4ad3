"""Edge cases of the paired CV tests that mutation testing (mutmut) found unchecked.

Each test pins a result field, a boundary or a branch that the worked examples in
``test_cv_tests.py`` leave open; see TESTING.md, "Mutation testing", for the mutants they kill.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from histobench.statistics import (
    StatisticsError,
    corrected_resampled_ttest,
    naive_paired_ttest,
    paired_permutation_test,
    wilcoxon_signed_rank,
)
from histobench.statistics.cv_tests import signed_rank_null

# --------------------------------------------------------------------------------------------
# t-tests: every field of the result, also where the differences have no variance
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_constant_shift_reports_every_field(alternative: str) -> None:
    a = np.full((3, 5), 0.9)
    r = corrected_resampled_ttest(a, a - 0.01, 80, 20, alternative=alternative)
    shift = float((a - (a - 0.01))[0, 0])
    assert r.test == "corrected_resampled_ttest"
    assert r.statistic == math.inf
    # A constant positive shift is overwhelming evidence for A > B and none at all for A < B.
    assert r.p_value == (1.0 if alternative == "less" else 0.0)
    assert r.df == 14
    assert (r.effect_size, r.ci_low, r.ci_high) == (shift, shift, shift)
    assert r.n == 15
    assert r.alternative == alternative


def test_zero_differences_report_every_field() -> None:
    a = np.full((2, 4), 0.8)
    r = naive_paired_ttest(a, a.copy(), alternative="greater")
    assert r.test == "naive_paired_ttest"
    assert (r.statistic, r.p_value, r.df) == (0.0, 1.0, 7.0)
    assert (r.effect_size, r.ci_low, r.ci_high) == (0.0, 0.0, 0.0)
    assert (r.n, r.alternative) == (8, "greater")


def test_t_tests_name_themselves_and_accept_one_dimensional_scores() -> None:
    a = np.array([0.81, 0.79, 0.84, 0.80, 0.83])
    b = np.array([0.78, 0.80, 0.80, 0.77, 0.79])
    naive = naive_paired_ttest(a, b)  # per-repeat (1-D) scores are allowed, as documented
    assert naive.test == "naive_paired_ttest"
    assert naive.statistic == pytest.approx(stats.ttest_rel(a, b).statistic, rel=1e-12)
    corrected = corrected_resampled_ttest(a, b, n_train=1, n_test=1)  # smallest positive sizes
    assert corrected.test == "corrected_resampled_ttest"
    assert corrected.statistic == pytest.approx(
        naive.statistic * math.sqrt((1 / 5) / (1 / 5 + 1.0)), rel=1e-12
    )


def test_corrected_ttest_rejects_an_empty_test_fold() -> None:
    with pytest.raises(StatisticsError, match="positive"):
        corrected_resampled_ttest(np.zeros((2, 5)), np.ones((2, 5)), 80, 0)


def test_dropped_nan_folds_are_counted_exactly_in_the_notes() -> None:
    a = np.array([[0.9, np.nan, 0.8], [0.7, 0.9, np.nan]])
    b = np.array([[0.8, 0.7, 0.8], [0.6, 0.9, 0.75]])
    r = corrected_resampled_ttest(a, b, 60, 30)
    assert r.notes.startswith("corrected resampled t-test (Nadeau & Bengio 2003)")
    assert r.notes.endswith("; 2 fold pair(s) with NaN dropped")
    clean = corrected_resampled_ttest(np.nan_to_num(a, nan=0.5), b, 60, 30)
    assert "dropped" not in clean.notes


# --------------------------------------------------------------------------------------------
# Wilcoxon signed-rank: the null distribution, the Hodges-Lehmann CI, the method notes
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 5, 8])
def test_signed_rank_null_equals_brute_force_enumeration(n: int) -> None:
    counts = np.zeros(n * (n + 1) // 2 + 1)
    for signs in itertools.product([0, 1], repeat=n):
        counts[sum(k * s for k, s in zip(range(1, n + 1), signs, strict=True))] += 1
    pmf = signed_rank_null(n)
    assert pmf.shape == counts.shape  # W+ ranges over 0 .. n(n+1)/2, nothing beyond
    assert pmf == pytest.approx(counts / 2**n, abs=0, rel=1e-15)


def _walsh(d: np.ndarray) -> np.ndarray:
    i, j = np.triu_indices(d.size)
    return np.sort((d[i] + d[j]) / 2.0)


def test_hodges_lehmann_ci_beyond_400_repeats_is_the_normal_approximation() -> None:
    # Above 400 differences the CI cut c comes from the normal approximation of W+; it must stay
    # within a few Walsh averages of the exact cut (here exact 45329, normal 45327, conservative).
    n = 450
    d = np.random.default_rng(7).normal(0.1, 1.0, n)
    r = wilcoxon_signed_rank(d, np.zeros(n))
    walsh = _walsh(d)
    m = walsh.size
    c_exact = int(np.searchsorted(np.cumsum(signed_rank_null(n)), 0.025, side="right"))
    c_low = int(np.searchsorted(walsh, r.ci_low)) + 1
    c_high = m - int(np.searchsorted(walsh, r.ci_high))
    assert c_low == c_high  # symmetric cut
    assert 0 <= c_exact - c_low <= 3
    assert r.effect_size == pytest.approx(float(np.median(walsh)))


def test_six_repeats_attain_a_ci_at_the_walsh_extremes() -> None:
    # n = 6: P(W+ <= 0) = 1/64 <= 0.025 < P(W+ <= 1), so c = 1 and the CI is the range of the
    # Walsh averages; unlike n <= 5 it *is* a (conservative) 95 % CI and no note says otherwise.
    d = np.array([0.3, -0.1, 0.5, 0.2, 0.7, 0.4])
    r = wilcoxon_signed_rank(d + 1.0, np.ones(6))
    walsh = _walsh(d + 1.0 - 1.0)
    assert (r.ci_low, r.ci_high) == pytest.approx((walsh[0], walsh[-1]))
    assert "not attainable" not in r.notes
    assert "unattainable" not in r.notes  # two-sided p = 2/64 < 0.05 is possible with 6


def test_wilcoxon_notes_are_exactly_the_method_taken() -> None:
    d = np.arange(1.0, 11.0) * [1, -1, 1, 1, -1, 1, 1, 1, -1, 1]
    r = wilcoxon_signed_rank(d, np.zeros(10), alternative="greater")
    assert r.notes == (
        "Wilcoxon signed-rank over repeats (zeros dropped); effect size: Hodges-Lehmann"
        " pseudo-median of A - B; exact null distribution"
    )
    assert (r.test, r.alternative, r.df) == ("wilcoxon_signed_rank", "greater", None)


def _distinct(n: int) -> np.ndarray:
    return np.arange(1.0, n + 1) * np.where(np.arange(n) % 3 == 1, -1.0, 1.0)


def _tied(n: int) -> np.ndarray:
    d = _distinct(n)
    d[1] = -d[0]  # |d| tied, no zeros
    return d


@pytest.mark.parametrize(
    ("d", "method", "scipy_method"),
    [
        (_distinct(50), "exact null distribution", "exact"),
        (_distinct(51), "normal approximation with tie correction", "approx"),
        (_tied(10), "exact sign-flip enumeration of the tied ranks", None),
        (np.append(_distinct(9), 0.0), "exact sign-flip enumeration of the tied ranks", None),
        (_tied(13), "exact sign-flip enumeration of the tied ranks", None),
        (_tied(14), "normal approximation with tie correction", "approx"),
    ],
    ids=["50 distinct", "51 distinct", "10 tied", "9 and a zero", "13 tied", "14 tied"],
)
def test_wilcoxon_method_boundaries_follow_scipy(
    d: np.ndarray, method: str, scipy_method: str | None
) -> None:
    r = wilcoxon_signed_rank(d, np.zeros(d.size))
    assert r.notes.endswith("; " + method)
    assert r.p_value == pytest.approx(stats.wilcoxon(d).pvalue, rel=1e-12)
    if scipy_method is not None:  # the note names what scipy's "auto" actually did
        assert r.p_value == pytest.approx(stats.wilcoxon(d, method=scipy_method).pvalue)


def test_wilcoxon_runs_with_two_repeats() -> None:
    r = wilcoxon_signed_rank([0.9, 0.8], [0.7, 0.75])
    assert r.n == 2 and r.p_value == 0.5  # exact: both signs positive, 1/4 doubled


@pytest.mark.parametrize(
    ("n", "alternative", "warned"),
    [(5, "two-sided", True), (6, "two-sided", False), (5, "greater", False)],
)
def test_unattainable_p_note_only_for_small_two_sided(
    n: int, alternative: str, warned: bool
) -> None:
    r = wilcoxon_signed_rank(_distinct(n), np.zeros(n), alternative=alternative)
    assert ("a two-sided p below 0.05 is unattainable" in r.notes) is warned


def test_wilcoxon_all_zero_differences_report_every_field() -> None:
    r = wilcoxon_signed_rank([0.9, 0.8, 0.7], [0.9, 0.8, 0.7], alternative="less")
    assert r.test == "wilcoxon_signed_rank"
    assert (r.statistic, r.p_value, r.df) == (0.0, 1.0, None)
    assert (r.effect_size, r.ci_low, r.ci_high) == (0.0, 0.0, 0.0)
    assert (r.n, r.alternative) == (3, "less")
    assert r.notes.endswith("; all paired differences are zero")


# --------------------------------------------------------------------------------------------
# paired permutation test
# --------------------------------------------------------------------------------------------


def test_permutation_result_fields_and_student_ci() -> None:
    d = np.array([0.03, -0.01, 0.02, 0.05])
    b = np.full(4, 0.7)
    r = paired_permutation_test(b + d, b, alternative="greater")
    observed = float(np.mean((b + d) - b))
    ci = stats.ttest_1samp((b + d) - b, 0.0).confidence_interval(0.95)
    assert r.test == "paired_permutation_test"
    assert (r.statistic, r.effect_size) == (pytest.approx(observed), pytest.approx(observed))
    assert r.df is None
    assert (r.ci_low, r.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-12)
    assert (r.n, r.alternative) == (4, "greater")
    assert "exact enumeration of all 16 sign vectors" in r.notes


def test_permutation_accepts_a_single_resample_and_rejects_3d_scores() -> None:
    a = np.linspace(1.0, 2.0, 12)
    r = paired_permutation_test(a, a - 0.5, n_permutations=1, seed=0)
    assert r.p_value in (pytest.approx(1.0), pytest.approx(0.5))  # (1 + k) / 2, doubled, capped
    with pytest.raises(StatisticsError):
        paired_permutation_test(np.zeros((2, 2, 2)), np.ones((2, 2, 2)))
