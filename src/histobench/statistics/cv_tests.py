"""Paired tests on cross-validation scores of two extractors evaluated on the same split plan.

The default is the corrected resampled t-test: repeated K-fold CV reuses every item in every
repeat, so fold differences are positively correlated and a plain t-test over them is far too
liberal (see ``calibration.null_calibration``). The naive test is kept only for comparison.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import stats

from histobench.statistics.results import (
    StatisticsError,
    TestResult,
    check_alternative,
    finite_differences,
    paired_arrays,
)

CONFIDENCE = 0.95


def _t_p_value(t: float, df: float, alternative: str) -> float:
    if alternative == "greater":
        return float(stats.t.sf(t, df))
    if alternative == "less":
        return float(stats.t.cdf(t, df))
    return float(min(1.0, 2.0 * stats.t.sf(abs(t), df)))


def _t_test(d: np.ndarray, scale: float, *, name: str, alternative: str, notes: str) -> TestResult:
    """A one-sample t-test of mean(d) = 0 with variance ``scale · var(d, ddof=1)``."""
    n = int(d.size)
    if n < 2:
        raise StatisticsError(f"{name} needs at least 2 finite paired scores, got {n}")
    mean = float(d.mean())
    se = math.sqrt(scale * float(d.var(ddof=1)))
    df = float(n - 1)
    if se == 0.0:
        # Identical differences everywhere: no sampling variability is visible. A zero mean is
        # no evidence at all (p = 1); a constant non-zero shift is an infinitely large t.
        if mean == 0.0:
            return TestResult(
                name, 0.0, 1.0, df, 0.0, 0.0, 0.0, n, alternative,
                notes + "; all paired differences are zero",
            )  # fmt: skip
        t = math.copysign(math.inf, mean)
        p = _t_p_value(t, df, alternative)
        return TestResult(
            name, t, p, df, mean, mean, mean, n, alternative,
            notes + "; paired differences are constant (zero variance)",
        )  # fmt: skip
    t = mean / se
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, df)) * se
    return TestResult(
        name, t, _t_p_value(t, df, alternative), df, mean, mean - half, mean + half, n,
        alternative, notes,
    )  # fmt: skip


def corrected_resampled_ttest(
    scores_a: Any,
    scores_b: Any,
    n_train: float,
    n_test: float,
    *,
    alternative: str = "two-sided",
) -> TestResult:
    """Nadeau & Bengio (2003) corrected repeated K-fold t-test (Bouckaert & Frank 2004).

    ``scores_a`` and ``scores_b`` are (R, K) fold scores on the same split plan; ``n_train`` and
    ``n_test`` are the (average) training and test-fold sizes. With J = R·K finite paired
    differences d, t = mean(d) / sqrt((1/J + n_test/n_train) · var(d, ddof=1)), df = J − 1.
    The n_test/n_train term models the correlation that overlapping training sets induce.
    The 95 % CI of the mean difference uses the same corrected standard error.
    """
    check_alternative(alternative)
    a, b = paired_arrays(scores_a, scores_b, ndim=(1, 2), what="fold scores")
    if not (n_train > 0 and n_test > 0):
        raise StatisticsError(
            f"n_train and n_test must be positive, got n_train={n_train}, n_test={n_test}"
        )
    d = finite_differences(a, b, what="fold scores")
    ratio = float(n_test) / float(n_train)
    notes = (
        f"corrected resampled t-test (Nadeau & Bengio 2003): variance × (1/J + n_test/n_train)"
        f" with J={d.size}, n_test/n_train={ratio:.4g}"
    )
    if d.size < a.size:
        notes += f"; {a.size - d.size} fold pair(s) with NaN dropped"
    return _t_test(
        d, 1.0 / max(d.size, 1) + ratio, name="corrected_resampled_ttest",
        alternative=alternative, notes=notes,
    )  # fmt: skip


def naive_paired_ttest(
    scores_a: Any, scores_b: Any, *, alternative: str = "two-sided"
) -> TestResult:
    """Plain paired t-test over all paired scores (equal to ``scipy.stats.ttest_rel``).

    Over repeated-CV folds this ignores their correlation and rejects far too often under the
    null; it is here to show that, not to be used for claims.
    """
    check_alternative(alternative)
    a, b = paired_arrays(scores_a, scores_b, ndim=(1, 2), what="paired scores")
    d = finite_differences(a, b, what="paired scores")
    notes = "naive paired t-test: treats all paired scores as independent (anti-conservative in CV)"
    return _t_test(
        d, 1.0 / max(d.size, 1), name="naive_paired_ttest", alternative=alternative, notes=notes
    )


# --------------------------------------------------------------------------------------------
# Wilcoxon signed-rank over repeats
# --------------------------------------------------------------------------------------------


def signed_rank_null(n: int) -> np.ndarray:
    """Exact null pmf of the signed-rank statistic W+ for n untied non-zero differences.

    W+ is a sum of independent terms k·Bernoulli(1/2), k = 1..n; convolving them one at a time
    with halving keeps the numbers as probabilities (no 2**n overflow).
    """
    pmf = np.zeros(n * (n + 1) // 2 + 1)
    pmf[0] = 1.0
    top = 0
    for k in range(1, n + 1):
        shifted = pmf[: top + 1].copy()
        pmf[: top + 1] *= 0.5
        pmf[k : k + top + 1] += 0.5 * shifted
        top += k
    return pmf


def _hodges_lehmann(d: np.ndarray) -> tuple[float, float, float, str]:
    """Hodges–Lehmann pseudo-median of d with its distribution-free 95 % CI (Walsh averages)."""
    n = d.size
    i, j = np.triu_indices(n)
    walsh = np.sort((d[i] + d[j]) / 2.0)
    m = walsh.size
    alpha = 1.0 - CONFIDENCE
    if n <= 400:
        cdf = np.cumsum(signed_rank_null(n))
        # c = number of Walsh averages cut from each end: the largest with P(W+ ≤ c − 1) ≤ α/2.
        c = int(np.searchsorted(cdf, alpha / 2.0, side="right"))
    else:
        sd = math.sqrt(n * (n + 1) * (2 * n + 1) / 24.0)
        c = int(math.floor(m / 2.0 - stats.norm.ppf(1 - alpha / 2) * sd))
    if c < 1:
        note = f"; a 95 % CI is not attainable with n={n} (range of Walsh averages given)"
        return float(np.median(walsh)), float(walsh[0]), float(walsh[-1]), note
    return float(np.median(walsh)), float(walsh[c - 1]), float(walsh[m - c]), ""


def wilcoxon_signed_rank(
    repeat_a: Any, repeat_b: Any, *, alternative: str = "two-sided"
) -> TestResult:
    """Wilcoxon signed-rank test over per-repeat scores: ``scipy.stats.wilcoxon``.

    scipy's defaults (``zero_method="wilcox"``, no continuity correction, ``method="auto"``):
    zero differences are dropped; exact null distribution for n ≤ 50 without ties or zeros;
    exact sign-flip enumeration for n ≤ 13 with ties or zeros; normal approximation with tie
    correction otherwise. The statistic is min(W+, W−) for the
    two-sided test and W+ for one-sided ones. Effect size: Hodges–Lehmann pseudo-median of A − B
    with its distribution-free 95 % CI from the exact signed-rank distribution (as R's
    ``wilcox.test(conf.int=TRUE)``; approximate when differences tie).

    Repeats of CV on the same data are not independent samples, so this test, like the naive
    t-test, overstates certainty about generalisation to new data; it describes consistency
    across repeats.
    """
    check_alternative(alternative)
    a, b = paired_arrays(repeat_a, repeat_b, ndim=1, what="per-repeat scores")
    if a.size < 2:
        raise StatisticsError(
            f"the Wilcoxon signed-rank test needs per-repeat scores from at least 2 repeats,"
            f" got {a.size}; run with more repeats"
        )
    d_all = finite_differences(a, b, what="per-repeat scores")
    n_total = d_all.size
    d = d_all[d_all != 0.0]
    n = d.size
    notes = "Wilcoxon signed-rank over repeats (zeros dropped)"
    hl, lo, hi, hl_note = _hodges_lehmann(d_all)
    notes += "; effect size: Hodges-Lehmann pseudo-median of A - B" + hl_note
    if n == 0:
        return TestResult(
            "wilcoxon_signed_rank", 0.0, 1.0, None, 0.0, 0.0, 0.0, n_total, alternative,
            notes + "; all paired differences are zero",
        )  # fmt: skip
    has_ties = np.unique(np.abs(d)).size < n
    res = stats.wilcoxon(d_all, zero_method="wilcox", alternative=alternative, method="auto")
    p, statistic = float(res.pvalue), float(res.statistic)
    if n_total <= 50 and not (has_ties or n < n_total):
        method = "exact null distribution"
    elif n_total <= 13:
        method = "exact sign-flip enumeration of the tied ranks"
    else:
        method = "normal approximation with tie correction"
    notes += f"; {method}"
    if n_total < 6 and alternative == "two-sided":
        notes += f"; with {n_total} repeats a two-sided p below 0.05 is unattainable"
    return TestResult(
        "wilcoxon_signed_rank", statistic, p, None, hl, lo, hi, n_total, alternative, notes
    )


# --------------------------------------------------------------------------------------------
# Paired permutation (sign-flip) test
# --------------------------------------------------------------------------------------------


def paired_permutation_test(
    a: Any,
    b: Any,
    n_permutations: int = 10000,
    seed: int = 0,
    *,
    alternative: str = "two-sided",
) -> TestResult:
    """Sign-flip permutation test of the mean paired difference A − B.

    ``scipy.stats.permutation_test(..., permutation_type="samples")`` on the differences: under
    the null the sign of each paired difference is exchangeable. With n pairs, all 2**n sign
    vectors are enumerated when 2**n ≤ ``n_permutations`` (exact p-value); otherwise
    ``n_permutations`` random sign vectors are drawn from ``seed`` and p = (1 + #extreme) /
    (1 + n_permutations), which never reports an impossible p = 0. The two-sided p doubles the
    smaller tail (the null is symmetric). The CI is Student's t on the mean difference.

    Sign flips treat pairs as exchangeable and independent: use it on per-repeat scores (or on
    per-patient scores of one repeat), not on pooled R×K fold scores, whose overlap makes it as
    liberal as the naive t-test.
    """
    check_alternative(alternative)
    if n_permutations < 1:
        raise StatisticsError(f"n_permutations must be at least 1, got {n_permutations}")
    xa, xb = paired_arrays(a, b, ndim=(1, 2), what="paired scores")
    d = finite_differences(xa, xb, what="paired scores")
    n = d.size
    if n < 2:
        raise StatisticsError(
            f"the paired permutation test needs at least 2 paired scores (e.g. 2 repeats), got {n}"
        )
    observed = float(d.mean())
    exact = 2**n <= n_permutations
    res = stats.permutation_test(
        (d,),
        np.mean,
        permutation_type="samples",  # one sample: the signs of the differences are flipped
        n_resamples=n_permutations,
        alternative=alternative,
        vectorized=False,
        random_state=np.random.default_rng(seed),
    )
    p = float(res.pvalue)
    how = (
        f"exact enumeration of all {2**n} sign vectors"
        if exact
        else f"Monte Carlo with {n_permutations} random sign vectors (seed {seed}), p = (1+k)/(1+B)"
    )
    base = _t_test(d, 1.0 / n, name="paired_permutation_test", alternative=alternative, notes="")
    return TestResult(
        "paired_permutation_test", observed, float(p), None, observed, base.ci_low,
        base.ci_high, n, alternative,
        f"sign-flip permutation test of the mean difference; {how}; CI: Student t",
    )  # fmt: skip
