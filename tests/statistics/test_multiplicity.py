"""Holm, Benjamini-Hochberg, the sign test and per-target comparisons against references."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from histobench.statistics import (
    StatisticsError,
    benjamini_hochberg,
    corrected_resampled_ttest,
    holm,
    per_target_comparison,
    sign_test,
    wilcoxon_signed_rank,
)

_P = {
    "uniform": np.random.default_rng(0).uniform(size=40),
    "small and tied": np.array([0.001, 0.01, 0.01, 0.04, 0.04, 0.3, 1.0, 0.0002, 0.049]),
    "one": np.array([0.03]),
}


@pytest.mark.parametrize("case", list(_P))
def test_holm_and_bh_equal_statsmodels(case: str) -> None:
    p = _P[case]
    for ours, method in ((holm, "holm"), (benjamini_hochberg, "fdr_bh")):
        reject, adj, _, _ = multipletests(p, alpha=0.05, method=method)
        np.testing.assert_allclose(ours(p), adj, rtol=1e-12)
        np.testing.assert_array_equal(ours(p) <= 0.05, reject)


def test_bh_and_holm_worked_example() -> None:
    p = [0.01, 0.04, 0.03, 0.005]
    # BH: sorted 0.005, 0.01, 0.03, 0.04 scaled by 4/rank -> 0.02, 0.02, 0.04, 0.04
    np.testing.assert_allclose(benjamini_hochberg(p), [0.02, 0.04, 0.04, 0.02])
    # Holm: 4·0.005, 3·0.01, 2·0.03, 1·0.04 -> 0.02, 0.03, 0.06, then max-accumulated 0.06
    np.testing.assert_allclose(holm(p), [0.03, 0.06, 0.06, 0.02])


def test_nan_p_values_stay_nan_and_do_not_count_as_tests() -> None:
    p = np.array([0.01, np.nan, 0.04])
    np.testing.assert_allclose(holm(p), [0.02, np.nan, 0.04])
    np.testing.assert_allclose(benjamini_hochberg(p), [0.02, np.nan, 0.04])
    with pytest.raises(StatisticsError, match=r"\[0, 1\]"):
        holm([0.5, 1.5])


@pytest.mark.parametrize(("k", "n"), [(139, 171), (5, 9), (0, 7), (7, 7), (10, 20), (1, 1)])
@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_sign_test_equals_binomtest(k: int, n: int, alternative: str) -> None:
    ref = stats.binomtest(k, n, 0.5, alternative=alternative)
    r = sign_test(k, n, alternative=alternative)
    assert r.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    ci = ref.proportion_ci(0.95, method="exact")
    assert r.effect_size == pytest.approx(k / n)
    if alternative == "two-sided":
        assert (r.ci_low, r.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-9, abs=1e-12)


def test_the_studys_139_of_171_claim() -> None:
    r = sign_test(139, 171)
    assert r.p_value < 1e-15  # far from a coin flip, if genes were independent
    assert r.ci_low > 0.74 and r.ci_high < 0.87
    with pytest.raises(StatisticsError, match="n_total"):
        sign_test(5, 3)


def _per_target_data() -> tuple[list[str], np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    t, r, k = 8, 10, 5
    shared = rng.normal(0.5, 0.05, size=(t, r, k))
    effect = np.array([0.05, 0.04, 0.06, 0.0, 0.0, 0.0, -0.05, 0.0])[:, None, None]
    a = shared + effect + rng.normal(0, 0.01, size=(t, r, k))
    b = shared + rng.normal(0, 0.01, size=(t, r, k))
    return [f"G{i}" for i in range(t)], a, b


def test_per_target_corrected_counts_and_adjustments() -> None:
    genes, a, b = _per_target_data()
    res = per_target_comparison(genes, a, b, n_train=80, n_test=20)
    assert res.test == "corrected"
    for i in range(len(genes)):
        ref = corrected_resampled_ttest(a[i], b[i], 80, 20)
        assert res.results[i].p_value == ref.p_value
    p = np.array([x.p_value for x in res.results])
    np.testing.assert_allclose(res.p_holm, holm(p))
    np.testing.assert_allclose(res.p_bh, benjamini_hochberg(p))
    diff = (a - b).reshape(8, -1).mean(axis=1)
    assert res.n_improved == int((diff > 0).sum()) and res.n_worse == int((diff < 0).sum())
    assert res.n_improved + res.n_worse + res.n_tied == 8
    # The three planted improvements and the planted loss survive Holm; nulls do not.
    assert res.n_better_holm == 3 and res.n_worse_holm == 1
    assert res.n_better_bh >= res.n_better_holm
    assert res.sign is not None
    assert res.sign.p_value == pytest.approx(
        stats.binomtest(res.n_improved, res.n_improved + res.n_worse).pvalue
    )
    rows = res.rows()
    assert rows[0]["target"] == "G0" and rows[0]["p_holm"] == res.p_holm[0]
    assert res.to_dict()["n_better_holm"] == 3


def test_per_target_with_repeat_scores_uses_wilcoxon() -> None:
    genes, a, b = _per_target_data()
    ra, rb = a.mean(axis=2), b.mean(axis=2)  # (targets, repeats)
    res = per_target_comparison(genes, ra, rb)
    assert res.test == "wilcoxon"
    assert res.results[0].p_value == wilcoxon_signed_rank(ra[0], rb[0]).p_value
    # lower is better: improved and worse swap
    flipped = per_target_comparison(genes, ra, rb, greater_is_better=False)
    assert (flipped.n_improved, flipped.n_worse) == (res.n_worse, res.n_improved)


def test_per_target_errors_are_one_line() -> None:
    genes, a, b = _per_target_data()
    with pytest.raises(StatisticsError) as info:
        per_target_comparison(genes, a[:, :1, 0], b[:, :1, 0])  # one repeat
    assert "at least 2 repeats" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(StatisticsError, match="n_train"):
        per_target_comparison(genes, a, b)
    with pytest.raises(StatisticsError, match="one row per target"):
        per_target_comparison(genes[:3], a, b, n_train=80, n_test=20)


def test_per_target_untestable_target_is_nan_not_a_crash() -> None:
    genes, a, b = _per_target_data()
    a = a.copy()
    a[2] = np.nan
    res = per_target_comparison(genes, a, b, n_train=80, n_test=20)
    assert np.isnan(res.results[2].p_value) and np.isnan(res.p_holm[2])
    assert res.n_improved + res.n_worse + res.n_tied == 7
