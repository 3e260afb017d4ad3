"""Edges of Holm, Benjamini-Hochberg, the sign test and per-target comparisons found by mutation
testing (``statistics.multiplicity``); references are statsmodels, scipy and counts by hand."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from histobench.statistics import (
    StatisticsError,
    TestResult,
    benjamini_hochberg,
    corrected_resampled_ttest,
    holm,
    naive_paired_ttest,
    paired_permutation_test,
    per_target_comparison,
    sign_test,
    wilcoxon_signed_rank,
)
from histobench.statistics.multiplicity import PerTargetComparison


@pytest.mark.parametrize("adjust", [holm, benjamini_hochberg])
def test_p_values_at_the_bounds_and_empty_input(adjust: Callable[[Any], np.ndarray]) -> None:
    """0 and 1 are valid p-values; just outside [0, 1] is an error; NaN and inf are not tests;
    an empty family gives an empty result; input must be 1-D."""
    np.testing.assert_array_equal(adjust([0.0, 1.0]), [0.0, 1.0])
    for bad in ([-1e-12, 0.5], [0.5, 1.0 + 1e-12]):
        with pytest.raises(StatisticsError, match=r"p-values must lie in \[0, 1\]"):
            adjust(bad)
    out = adjust([np.inf, 0.02, np.nan, 0.04])
    assert out.dtype == float and out.shape == (4,)
    assert np.isnan(out[[0, 2]]).all()
    method = "holm" if adjust is holm else "fdr_bh"
    np.testing.assert_allclose(out[[1, 3]], multipletests([0.02, 0.04], method=method)[1])
    assert adjust([]).shape == (0,)
    assert np.isnan(adjust([np.nan, np.nan])).all()
    with pytest.raises(StatisticsError, match=r"1-D array, got shape \(2, 2\)"):
        adjust([[0.1, 0.2], [0.3, 0.4]])


@pytest.mark.parametrize("seed", range(5))
def test_holm_and_bh_equal_statsmodels_with_ties_and_nans(seed: int) -> None:
    rng = np.random.default_rng(seed)
    p = np.round(rng.uniform(0, 0.2, size=25) ** 2, 3)  # many ties, some adjusted above 1
    p[rng.choice(25, 4, replace=False)] = np.nan
    ok = np.isfinite(p)
    for adjust, method in ((holm, "holm"), (benjamini_hochberg, "fdr_bh")):
        got = adjust(p)
        np.testing.assert_allclose(got[ok], multipletests(p[ok], method=method)[1], rtol=1e-12)
        assert np.isnan(got[~ok]).all()


@pytest.mark.parametrize("alternative", ["greater", "less"])
def test_sign_test_ci_is_two_sided_whatever_the_alternative(alternative: str) -> None:
    r = sign_test(13, 20, alternative=alternative)
    ci = stats.binomtest(13, 20, 0.5).proportion_ci(0.95, method="exact")
    assert (r.ci_low, r.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-12)
    ref = stats.binomtest(13, 20, 0.5, alternative=alternative).pvalue
    assert r.p_value == pytest.approx(ref, rel=1e-12)
    assert (r.test, r.statistic, r.df, r.n, r.alternative) == (
        "sign_test", 13.0, None, 20, alternative,
    )  # fmt: skip
    assert r.effect_size == 0.65 and "Clopper-Pearson" in r.notes


def test_sign_test_input_errors() -> None:
    for k, n in ((-1, 5), (6, 5), (0, 0)):
        with pytest.raises(StatisticsError, match=rf"got {k} of {n}"):
            sign_test(k, n)
    with pytest.raises(StatisticsError, match="alternative"):
        sign_test(3, 5, alternative="bigger")


def _data(t: int = 6, r: int = 6, k: int = 4) -> tuple[list[str], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    shared = rng.normal(0.6, 0.05, size=(t, r, k))
    effect = np.linspace(-0.03, 0.03, t)[:, None, None]
    a = shared + effect + rng.normal(0, 0.01, size=(t, r, k))
    b = shared + rng.normal(0, 0.01, size=(t, r, k))
    return [f"T{i}" for i in range(t)], a, b


def _counts_by_hand(res: PerTargetComparison, a: np.ndarray, b: np.ndarray, alpha: float) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN target: NaN, not counted
        diff = np.nanmean((a - b).reshape(a.shape[0], -1), axis=1)
    ph, pb = np.array(res.p_holm), np.array(res.p_bh)
    better, worse = diff > 0, diff < 0
    assert res.n_improved == better.sum() and res.n_worse == worse.sum()
    assert res.n_tied == (diff == 0).sum()
    assert res.n_better_holm == (better & (ph <= alpha)).sum()
    assert res.n_worse_holm == (worse & (ph <= alpha)).sum()
    assert res.n_better_bh == (better & (pb <= alpha)).sum()
    assert res.n_worse_bh == (worse & (pb <= alpha)).sum()


@pytest.mark.parametrize("test", ["naive", "permutation"])
def test_naive_and_permutation_per_target(test: str) -> None:
    genes, a, b = _data()
    if test == "naive":
        res = per_target_comparison(genes, a, b, test="naive", alpha=0.2)
        refs = [naive_paired_ttest(a[i], b[i]) for i in range(len(genes))]
    else:
        ra, rb = a.mean(axis=2), b.mean(axis=2)
        res = per_target_comparison(
            genes, ra, rb, test="permutation", n_permutations=50, seed=4, alpha=0.2
        )
        refs = [paired_permutation_test(ra[i], rb[i], 50, 4) for i in range(len(genes))]
        a, b = ra, rb
    assert res.test == test and res.alpha == 0.2 and res.targets == tuple(genes)
    assert res.results == tuple(refs)
    p = np.array([x.p_value for x in refs])
    np.testing.assert_allclose(res.p_holm, multipletests(p, method="holm")[1], rtol=1e-12)
    np.testing.assert_allclose(res.p_bh, multipletests(p, method="fdr_bh")[1], rtol=1e-12)
    _counts_by_hand(res, a, b, 0.2)
    if test == "permutation":  # n_permutations and seed reach the test: defaults differ
        assert paired_permutation_test(a[0], b[0]) != refs[0]
        assert paired_permutation_test(a[0], b[0], 50, 5) != refs[0]


def test_precomputed_results_boundaries_and_counts() -> None:
    """Precomputed results: the tests are used as given, named by ``test``; a Holm- or
    BH-adjusted p exactly at alpha is significant; the counts, rows and sign test follow."""
    genes = ["a", "b", "c", "d"]
    a = np.array([[1.0, 2.0], [0.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    b = np.array([[0.0, 1.0], [1.0, 1.0], [1.0, 1.0], [np.nan, np.nan]])  # +1, -1, tie, NaN
    ps = [0.0125, 0.0125, 0.5, 0.9]  # Holm: 0.05, 0.05, 1.0, 1.0; BH: 0.025, 0.025, ...
    results = tuple(
        TestResult("mine", 1.0, p, 3.0, 0.1 * i, -1.0 + i, 2.0 + i, 4, "two-sided", "")
        for i, p in enumerate(ps)
    )
    res = per_target_comparison(genes, a, b, test="jack", results=results, alpha=0.05)
    assert res.test == "jack" and res.results == results
    np.testing.assert_allclose(res.p_holm, [0.05, 0.05, 1.0, 1.0])
    np.testing.assert_allclose(res.p_bh, [0.025, 0.025, 2 / 3, 0.9])
    assert res.mean_difference[:3] == (1.0, -1.0, 0.0) and math.isnan(res.mean_difference[3])
    assert (res.n_improved, res.n_worse, res.n_tied) == (1, 1, 1)
    assert (res.n_better_holm, res.n_worse_holm, res.n_better_bh, res.n_worse_bh) == (1, 1, 1, 1)
    assert res.sign == sign_test(1, 2)
    rows = res.rows()
    assert [r["target"] for r in rows] == genes
    assert rows[1] == {
        "target": "b", "mean_difference": -1.0, "effect_size": 0.1, "ci_low": 0.0,
        "ci_high": 3.0, "p": 0.0125, "p_holm": res.p_holm[1], "p_bh": res.p_bh[1],
    }  # fmt: skip
    d = res.to_dict()
    assert d["mean_difference"][3] is None and d["n_tied"] == 1 and d["test"] == "jack"
    # lower is better: the same targets swap sides
    low = per_target_comparison(genes, a, b, test="jack", results=results,
                                greater_is_better=False)  # fmt: skip
    assert (low.n_better_holm, low.n_worse_holm, low.n_tied) == (1, 1, 1)
    assert low.mean_difference[:3] == res.mean_difference[:3]
    with pytest.raises(StatisticsError, match="3 precomputed results for 4 targets"):
        per_target_comparison(genes, a, b, results=results[:3])


def test_adjusted_p_exactly_at_alpha_is_significant_for_both_methods() -> None:
    """p = (0.025, 0.05): Holm gives (0.05, 0.05) and BH (0.05, 0.05), exactly alpha."""
    a, b = np.array([[1.0, 2.0], [3.0, 1.0]]), np.zeros((2, 2))
    results = tuple(
        TestResult("mine", 1.0, p, None, 1.0, 0.0, 2.0, 2, "two-sided", "") for p in (0.025, 0.05)
    )
    res = per_target_comparison(["x", "y"], a, b, test="jack", results=results)
    assert res.p_holm == (0.05, 0.05) and res.p_bh == (0.05, 0.05)
    assert (res.n_improved, res.n_worse, res.n_better_holm, res.n_better_bh) == (2, 0, 2, 2)
    res = per_target_comparison(["x", "y"], a, b, test="jack", results=results, alpha=0.049)
    assert (res.n_improved, res.n_better_holm, res.n_better_bh) == (2, 0, 0)


def test_auto_test_on_repeat_scores_is_wilcoxon_result_for_result() -> None:
    genes, a, b = _data()
    ra, rb = a.mean(axis=2), b.mean(axis=2)
    res = per_target_comparison(genes, ra, rb)
    assert res.results == tuple(wilcoxon_signed_rank(ra[i], rb[i]) for i in range(len(genes)))
    assert per_target_comparison(genes, ra, rb, test="wilcoxon").results == res.results


def test_all_tied_targets_have_no_sign_test() -> None:
    a = np.ones((3, 4))
    res = per_target_comparison(["x", "y", "z"], a, a.copy())
    assert res.sign is None and res.n_tied == 3 and res.n_improved == res.n_worse == 0
    assert res.test == "wilcoxon"


def test_untestable_target_result_fields() -> None:
    genes, a, b = _data()
    a = a.copy()
    a[1] = np.nan
    res = per_target_comparison(genes, a, b, n_train=30, n_test=10)
    bad = res.results[1]
    assert bad.test == "corrected" and bad.n == 0 and bad.df is None
    with pytest.raises(StatisticsError) as err:  # the target's own error, as its notes
        corrected_resampled_ttest(a[1], b[1], 30, 10)
    assert bad.alternative == "two-sided" and bad.notes == str(err.value)
    for v in (bad.statistic, bad.p_value, bad.effect_size, bad.ci_low, bad.ci_high):
        assert math.isnan(v)
    assert math.isnan(res.p_bh[1]) and math.isnan(res.mean_difference[1])
    np.testing.assert_allclose(
        np.delete(res.p_holm, 1),
        multipletests(np.delete([r.p_value for r in res.results], 1), method="holm")[1],
    )
    _counts_by_hand(res, a, b, 0.05)


def test_per_target_argument_errors() -> None:
    genes, a, b = _data()
    ra, rb = a.mean(axis=2), b.mean(axis=2)
    with pytest.raises(StatisticsError, match="test must be one of auto, corrected"):
        per_target_comparison(genes, a, b, test="student")
    for test in ("corrected", "naive"):
        with pytest.raises(StatisticsError, match=f"test '{test}' needs \\(targets, repeats, f"):
            per_target_comparison(genes, ra, rb, test=test, n_train=30, n_test=10)
    for test in ("wilcoxon", "permutation"):
        with pytest.raises(StatisticsError, match=f"test '{test}' needs \\(targets, repeats\\)"):
            per_target_comparison(genes, a, b, test=test)
    for kw in ({"n_train": 30}, {"n_test": 10}):
        with pytest.raises(StatisticsError, match="needs n_train and n_test"):
            per_target_comparison(genes, a, b, **kw)  # type: ignore[arg-type]
    with pytest.raises(StatisticsError, match="one row per target"):
        per_target_comparison(genes, a, b[:, :, :3], n_train=30, n_test=10)
    with pytest.raises(StatisticsError, match="one row per target"):
        per_target_comparison(genes, a[..., 0, 0], b[..., 0, 0])
    for test in ("wilcoxon", "permutation"):
        with pytest.raises(StatisticsError, match="at least 2 repeats, got 1"):
            per_target_comparison(genes, ra[:, :1], rb[:, :1], test=test)
    res = per_target_comparison(genes, ra[:, :2], rb[:, :2], test="permutation")  # 2 repeats
    assert res.test == "permutation" and len(res.results) == len(genes)


@pytest.mark.parametrize("shape", [(0, 4), (0, 4, 5)])
def test_zero_targets_is_a_one_line_error(shape: tuple[int, ...]) -> None:
    empty = np.zeros(shape)
    with pytest.raises(StatisticsError, match="no targets to compare"):
        per_target_comparison([], empty, empty, test="naive" if len(shape) == 3 else "wilcoxon")
