"""Edges of the Friedman test and Nemenyi post-hoc (``statistics.ranking``) found by mutation
testing; references are Demšar's (2006) formulas written out, scipy and hand-made tables."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from histobench.statistics import StatisticsError, TestResult, friedman_nemenyi
from histobench.statistics.ranking import FriedmanNemenyiResult, nemenyi_q


def _table(seed: int = 31, n: int = 20, k: int = 4) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, k)) + np.linspace(0.0, 1.2, k)


def test_every_field_equals_demsars_formulas() -> None:
    """Kendall's W, Iman-Davenport's F and its p, the Nemenyi pairwise p-values and the CD
    at alpha = 0.1, written out from Demšar (2006), without ties."""
    x = _table()
    n, k = x.shape
    res = friedman_nemenyi(x, ["a", "b", "c", "d"], alpha=0.1)
    ranks = stats.rankdata(-x, axis=1)
    avg = ranks.mean(axis=0)
    chi2 = 12 * n / (k * (k + 1)) * (np.sum(avg**2) - k * (k + 1) ** 2 / 4)
    ref = stats.friedmanchisquare(*x.T)
    assert chi2 == pytest.approx(ref.statistic, rel=1e-12)
    f = res.friedman
    assert (f.test, f.df, f.n, f.alternative) == ("friedman", k - 1, n, "two-sided")
    assert f.statistic == pytest.approx(chi2, rel=1e-12)
    assert f.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    assert math.isnan(f.ci_low) and math.isnan(f.ci_high)
    assert f.notes == "Friedman chi-square (tie-corrected); effect size: Kendall's W"
    # Kendall's W from the rank sums: 12 S / (n² (k³ − k)).
    s = np.sum((ranks.sum(axis=0) - n * (k + 1) / 2) ** 2)
    assert f.effect_size == pytest.approx(12 * s / (n**2 * (k**3 - k)), rel=1e-12)
    f_id = (n - 1) * chi2 / (n * (k - 1) - chi2)
    assert res.iman_davenport_f == pytest.approx(f_id, rel=1e-12)
    assert res.iman_davenport_p == pytest.approx(
        stats.f.sf(f_id, k - 1, (k - 1) * (n - 1)), rel=1e-10
    )
    assert 1e-6 < res.iman_davenport_p < 0.5  # an informative case
    se = math.sqrt(k * (k + 1) / (6 * n))
    assert res.critical_difference == pytest.approx(
        stats.studentized_range.ppf(0.9, k, np.inf) / math.sqrt(2) * se, rel=1e-9
    )
    assert (res.alpha, res.n_blocks, res.names) == (0.1, n, ("a", "b", "c", "d"))
    assert res.average_ranks == pytest.approx(tuple(avg), rel=1e-14)
    p = np.array(res.pairwise_p)
    for i in range(k):
        for j in range(k):
            z = abs(avg[i] - avg[j]) / se  # Demšar's z; q = z·√2
            want = 1.0 if i == j else stats.studentized_range.sf(z * math.sqrt(2), k, np.inf)
            assert p[i, j] == pytest.approx(want, rel=1e-9, abs=1e-12), (i, j)
    assert 0.0 < p.min() < 0.1 < p[p < 1].max()  # some pairs differ and some do not


def test_two_extractors_nemenyi_is_the_two_sided_normal_test() -> None:
    """With k = 2 the studentized range over √2 is the normal quantile, so the pairwise p is
    the two-sided normal p of z = ΔR / sqrt(k(k+1)/(6n))."""
    x = _table(32, n=30, k=2)
    res = friedman_nemenyi(x, ["a", "b"])
    avg = np.array(res.average_ranks)
    z = abs(avg[0] - avg[1]) / math.sqrt(2 * 3 / (6 * 30))
    assert res.pairwise_p[0][1] == pytest.approx(2 * stats.norm.sf(z), rel=1e-6)
    assert res.pairwise_p[1][0] == res.pairwise_p[0][1]
    assert nemenyi_q(2) == pytest.approx(stats.norm.ppf(0.975), rel=1e-6)


def test_nemenyi_q_default_alpha_is_five_percent() -> None:
    assert nemenyi_q(4) == nemenyi_q(4, 0.05) == pytest.approx(2.569, abs=1.5e-3)


def test_strong_but_imperfect_concordance_has_a_finite_iman_davenport_f() -> None:
    """Five blocks rank a > b > c, one a > c > b: chi2 = 10.33, between n(k − 2) = 6 and
    n(k − 1) = 12, so F is finite (only perfect concordance, chi2 = 12, makes it infinite)."""
    x = np.array([[3.0, 2.0, 1.0]] * 5 + [[3.0, 1.0, 2.0]])
    res = friedman_nemenyi(x, ["a", "b", "c"])
    chi2 = stats.friedmanchisquare(*x.T).statistic
    assert res.friedman.statistic == pytest.approx(chi2) == pytest.approx(31 / 3)
    f_id = 5 * chi2 / (12 - chi2)
    assert res.iman_davenport_f == pytest.approx(f_id, rel=1e-12)
    assert res.iman_davenport_p == pytest.approx(stats.f.sf(f_id, 2, 10), rel=1e-10)
    assert res.friedman.effect_size == pytest.approx(chi2 / 12)


def test_all_tied_blocks_fields() -> None:
    res = friedman_nemenyi(np.ones((4, 3)), ["a", "b", "c"])
    f = res.friedman
    assert (f.statistic, f.p_value, f.effect_size, f.df) == (0.0, 1.0, 0.0, 2.0)
    assert f.notes.endswith("; all extractors tie in every block")
    assert res.iman_davenport_f == 0.0 and res.iman_davenport_p == 1.0
    assert res.average_ranks == (2.0, 2.0, 2.0)
    assert res.pairwise_p == ((1.0,) * 3,) * 3


def test_ties_in_some_blocks_equal_scipy_and_w_uses_the_corrected_chi2() -> None:
    x = np.array([[1.0, 1.0, 2.0], [3.0, 1.0, 2.0], [2.0, 2.0, 2.0], [1.0, 3.0, 2.0],
                  [0.5, 2.5, 2.5], [1.0, 2.0, 3.0]])  # fmt: skip
    res = friedman_nemenyi(x, ["a", "b", "c"])
    ref = stats.friedmanchisquare(*x.T)
    assert res.friedman.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert res.friedman.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    assert res.friedman.effect_size == pytest.approx(ref.statistic / (6 * 2), rel=1e-12)


def _result(ranks: tuple[float, ...], cd: float) -> FriedmanNemenyiResult:
    """A result with given average ranks and CD (the other fields do not enter cliques())."""
    k = len(ranks)
    friedman = TestResult(
        "friedman", 0.0, 1.0, k - 1.0, 0.0, math.nan, math.nan, 10, "two-sided", ""
    )
    return FriedmanNemenyiResult(
        tuple("abcdef"[:k]), friedman, 0.0, 1.0, ranks, cd, 0.05, 10, ((1.0,) * k,) * k
    )


def test_cliques_are_the_maximal_runs_below_the_cd() -> None:
    # Rank order c, a, d, b, e. With CD 1.0: c-a-d (spread 0.9), a-d-b (0.9); b-e (0.5).
    r = _result((1.5, 2.4, 0.6, 1.5, 2.9), 1.0)
    assert r.ordered() == [("c", 0.6), ("a", 1.5), ("d", 1.5), ("b", 2.4), ("e", 2.9)]
    assert r.cliques() == [("c", "a", "d"), ("a", "d", "b"), ("b", "e")]
    # A spread exactly at the CD is a difference: no bar joins the two.
    assert _result((1.0, 2.0), 1.0).cliques() == []
    assert _result((1.0, 2.0), 1.0 + 1e-12).cliques() == [("a", "b")]
    # A run inside a longer one is not a separate bar; single extractors are no bars.
    assert _result((1.0, 1.2, 1.4), 1.0).cliques() == [("a", "b", "c")]
    assert _result((1.0, 5.0, 9.0), 1.0).cliques() == []
    d = r.to_dict()
    assert d["average_ranks"] == [1.5, 2.4, 0.6, 1.5, 2.9] and d["n_blocks"] == 10


def test_input_errors_and_dropped_blocks() -> None:
    with pytest.raises(StatisticsError, match=r"2 columns, got \(4, 3\)"):
        friedman_nemenyi(np.ones((4, 3)), ["a", "b"])
    with pytest.raises(StatisticsError, match=r"2 columns, got \(4,\)"):
        friedman_nemenyi(np.ones(4), ["a", "b"])
    with pytest.raises(StatisticsError, match=r"unique, got \['a', 'a'\]"):
        friedman_nemenyi(np.ones((4, 2)), ["a", "a"])
    with pytest.raises(StatisticsError, match="got 1 and 4"):
        friedman_nemenyi(np.ones((4, 1)), ["a"])
    with pytest.raises(StatisticsError, match="got 2 and 1"):
        friedman_nemenyi([[1.0, 2.0], [np.nan, 1.0]], ["a", "b"])
    for alpha in (0.0, 1.0):
        with pytest.raises(StatisticsError, match=f"alpha must be in \\(0, 1\\), got {alpha}"):
            friedman_nemenyi(_table(), list("abcd"), alpha=alpha)
    # two complete blocks are enough; NaN blocks are dropped and counted
    res = friedman_nemenyi([[1.0, 2.0], [np.nan, 1.0], [2.0, 1.0], [np.inf, 0.0]], ["a", "b"])
    assert res.n_blocks == 2 and res.friedman.n == 2
    assert res.friedman.notes == (
        "Friedman chi-square (tie-corrected); effect size: Kendall's W; 2 block(s) with NaN dropped"
    )
    assert res.average_ranks == (1.5, 1.5)
    rows = [[1.0, 2.0], [np.nan, 1.0], [2.0, 1.0], [3.0, np.nan], [3.0, 1.0]]
    res = friedman_nemenyi(rows, ["a", "b"])
    assert res.n_blocks == 3 and res.average_ranks == pytest.approx((4 / 3, 5 / 3))
    assert res.friedman.notes.endswith("effect size: Kendall's W; 2 block(s) with NaN dropped")
