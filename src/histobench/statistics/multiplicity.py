"""Many targets at once (genes, classes): adjusted p-values and a sign test on the count improved.

``holm`` and ``benjamini_hochberg`` equal statsmodels' ``multipletests`` methods "holm" and
"fdr_bh"; ``sign_test`` equals ``scipy.stats.binomtest(k, n, 0.5)``. ``per_target_comparison``
makes a claim like the study's "FTX improved 139 of 171 genes" testable.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from histobench.statistics.cv_tests import (
    corrected_resampled_ttest,
    naive_paired_ttest,
    paired_permutation_test,
    wilcoxon_signed_rank,
)
from histobench.statistics.results import (
    StatisticsError,
    TestResult,
    _jsonable,
    check_alternative,
)

CONFIDENCE = 0.95


def _pvalues(pvalues: Any) -> tuple[np.ndarray, np.ndarray]:
    p = np.asarray(pvalues, dtype=float)
    if p.ndim != 1:
        raise StatisticsError(f"p-values must be a 1-D array, got shape {p.shape}")
    finite = np.isfinite(p)
    if np.any((p[finite] < 0) | (p[finite] > 1)):
        raise StatisticsError("p-values must lie in [0, 1]")
    return p, finite


def holm(pvalues: Any) -> np.ndarray:
    """Holm's step-down adjusted p-values (family-wise error). NaNs stay NaN and are not counted
    as tests (a target that could not be tested does not make the others harder to pass)."""
    p, finite = _pvalues(pvalues)
    out = np.full(p.shape, np.nan)
    q = p[finite]
    m = q.size
    if m:
        order = np.argsort(q, kind="mergesort")
        adj = np.maximum.accumulate(q[order] * np.arange(m, 0, -1))
        res = np.empty(m)
        res[order] = np.minimum(adj, 1.0)
        out[finite] = res
    return out


def benjamini_hochberg(pvalues: Any) -> np.ndarray:
    """Benjamini–Hochberg adjusted p-values (false discovery rate); NaNs stay NaN."""
    p, finite = _pvalues(pvalues)
    out = np.full(p.shape, np.nan)
    q = p[finite]
    m = q.size
    if m:
        order = np.argsort(q, kind="mergesort")
        scaled = q[order] * m / np.arange(1, m + 1)
        adj = np.minimum.accumulate(scaled[::-1])[::-1]
        res = np.empty(m)
        res[order] = np.minimum(adj, 1.0)
        out[finite] = res
    return out


def sign_test(n_improved: int, n_total: int, *, alternative: str = "two-sided") -> TestResult:
    """Exact binomial sign test of P(improved) = 1/2 over ``n_total`` untied targets.

    ``effect_size`` is the proportion improved (not a difference), with its Clopper–Pearson
    95 % CI. Targets are treated as independent, which correlated genes are not: read the
    p-value as descriptive when targets share biology.
    """
    check_alternative(alternative)
    k, n = int(n_improved), int(n_total)
    if n < 1 or not 0 <= k <= n:
        raise StatisticsError(
            f"sign test needs 0 <= n_improved <= n_total and n_total >= 1, got {k} of {n}"
        )
    p = float(stats.binomtest(k, n, 0.5, alternative=alternative).pvalue)
    # The CI is two-sided whatever the alternative (the effect size's 95 % interval).
    ci = stats.binomtest(k, n, 0.5).proportion_ci(CONFIDENCE, method="exact")
    lo, hi = float(ci.low), float(ci.high)
    return TestResult(
        "sign_test", float(k), p, None, k / n, lo, hi, n, alternative,
        "exact binomial sign test on the number of targets improved; effect size: proportion"
        " improved (Clopper-Pearson CI)",
    )  # fmt: skip


@dataclass(frozen=True)
class PerTargetComparison:
    """Per-target paired tests of A against B with Holm and BH adjustment and a sign test."""

    test: str
    alpha: float
    targets: tuple[str, ...]
    results: tuple[TestResult, ...]
    mean_difference: tuple[float, ...]  # mean A − B per target over all paired scores
    p_holm: tuple[float, ...]
    p_bh: tuple[float, ...]
    n_improved: int  # mean difference favours A (ties and untestable targets excluded)
    n_worse: int
    n_tied: int
    n_better_holm: int  # improved and significant after Holm at ``alpha``
    n_worse_holm: int
    n_better_bh: int
    n_worse_bh: int
    sign: TestResult | None  # None when every target tied

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))

    def rows(self) -> list[dict[str, Any]]:
        """One flat record per target, for tables."""
        return [
            {
                "target": t,
                "mean_difference": md,
                "effect_size": r.effect_size,
                "ci_low": r.ci_low,
                "ci_high": r.ci_high,
                "p": r.p_value,
                "p_holm": ph,
                "p_bh": pb,
            }
            for t, r, md, ph, pb in zip(
                self.targets,
                self.results,
                self.mean_difference,
                self.p_holm,
                self.p_bh,
                strict=True,
            )  # fmt: skip
        ]


_TESTS = ("corrected", "naive", "wilcoxon", "permutation")


def per_target_comparison(
    targets: Sequence[str],
    a_scores: Any,
    b_scores: Any,
    *,
    test: str = "auto",
    n_train: float | None = None,
    n_test: float | None = None,
    alpha: float = 0.05,
    greater_is_better: bool = True,
    n_permutations: int = 10000,
    seed: int = 0,
    results: Sequence[TestResult] | None = None,
) -> PerTargetComparison:
    """Run the paired test per target, adjust with Holm and BH, count wins and sign-test them.

    ``a_scores``/``b_scores`` are (T, R) per-repeat scores (tests "wilcoxon", "permutation") or
    (T, R, K) fold scores (tests "corrected" — needs ``n_train``/``n_test`` — and "naive").
    ``test="auto"`` picks "corrected" for fold scores and "wilcoxon" for repeat scores.
    ``results`` passes one test per target computed elsewhere (e.g. the unit jackknife from
    stored predictions); ``test`` then only names it.
    A target counts as improved when its mean difference favours A (``greater_is_better``
    says which sign that is); the sign test is on improved vs worse, ties excluded.
    """
    names = tuple(str(t) for t in targets)
    if not names:
        raise StatisticsError("per-target comparison: no targets to compare")
    a, b = np.asarray(a_scores, dtype=float), np.asarray(b_scores, dtype=float)
    if a.shape != b.shape or a.ndim not in (2, 3) or a.shape[0] != len(names):
        raise StatisticsError(
            f"per-target scores must be (targets, repeats[, folds]) arrays with one row per"
            f" target ({len(names)}), got A {a.shape} and B {b.shape}"
        )
    if results is not None:
        if len(results) != len(names):
            raise StatisticsError(f"{len(results)} precomputed results for {len(names)} targets")
        return _summarise(names, tuple(results), a, b, test, alpha, greater_is_better)
    if test == "auto":
        test = "corrected" if a.ndim == 3 else "wilcoxon"
    if test not in _TESTS:
        raise StatisticsError(f"test must be one of auto, {', '.join(_TESTS)}, not {test!r}")
    if test in ("corrected", "naive") and a.ndim != 3:
        raise StatisticsError(f"test {test!r} needs (targets, repeats, folds) fold scores")
    if test in ("wilcoxon", "permutation") and a.ndim != 2:
        raise StatisticsError(f"test {test!r} needs (targets, repeats) per-repeat scores")
    if test == "corrected" and (n_train is None or n_test is None):
        raise StatisticsError(
            "test 'corrected' needs n_train and n_test (training/test fold sizes)"
        )
    if test in ("wilcoxon", "permutation") and a.shape[1] < 2:
        raise StatisticsError(
            f"test {test!r} needs per-repeat scores from at least 2 repeats, got {a.shape[1]}"
        )

    found = []
    for i in range(len(names)):
        try:
            if test == "corrected":
                assert n_train is not None and n_test is not None
                r = corrected_resampled_ttest(a[i], b[i], n_train, n_test)
            elif test == "naive":
                r = naive_paired_ttest(a[i], b[i])
            elif test == "wilcoxon":
                r = wilcoxon_signed_rank(a[i], b[i])
            else:
                r = paired_permutation_test(a[i], b[i], n_permutations, seed)
        except StatisticsError as err:  # e.g. a gene whose folds were all unscorable
            nan = float("nan")
            r = TestResult(test, nan, nan, None, nan, nan, nan, 0, "two-sided", str(err))
        found.append(r)
    return _summarise(names, tuple(found), a, b, test, alpha, greater_is_better)


def _summarise(
    names: tuple[str, ...],
    results: tuple[TestResult, ...],
    a: np.ndarray,
    b: np.ndarray,
    test: str,
    alpha: float,
    greater_is_better: bool,
) -> PerTargetComparison:
    """Holm, BH, improvement counts and the sign test over the per-target results."""
    p = np.array([r.p_value for r in results])
    p_holm, p_bh = holm(p), benjamini_hochberg(p)
    # Improvement is judged on the plain mean difference whatever the test (the Wilcoxon effect
    # size is a pseudo-median), so the count does not change with the test chosen.
    flat = (a - b).reshape(len(names), -1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN target gives NaN quietly
        mean_diff = np.nanmean(flat, axis=1) if flat.size else np.zeros(0)
    diff = mean_diff * (1.0 if greater_is_better else -1.0)
    better, worse = diff > 0, diff < 0
    n_imp, n_wor = int(better.sum()), int(worse.sum())
    with np.errstate(invalid="ignore"):
        sig_h, sig_b = p_holm <= alpha, p_bh <= alpha
    return PerTargetComparison(
        test=test,
        alpha=alpha,
        targets=names,
        results=results,
        mean_difference=tuple(float(x) for x in mean_diff),
        p_holm=tuple(float(x) for x in p_holm),
        p_bh=tuple(float(x) for x in p_bh),
        n_improved=n_imp,
        n_worse=n_wor,
        n_tied=int((diff == 0).sum()),
        n_better_holm=int((better & sig_h).sum()),
        n_worse_holm=int((worse & sig_h).sum()),
        n_better_bh=int((better & sig_b).sum()),
        n_worse_bh=int((worse & sig_b).sum()),
        sign=sign_test(n_imp, n_imp + n_wor) if n_imp + n_wor else None,
    )
