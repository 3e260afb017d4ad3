"""Friedman test and Nemenyi critical difference against scipy and Demšar's (2006) table."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from histobench.statistics import friedman_nemenyi
from histobench.statistics.ranking import nemenyi_q
from histobench.statistics.results import StatisticsError


@pytest.mark.parametrize("ties", [False, True])
def test_friedman_equals_scipy(ties: bool) -> None:
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(12, 4)) + np.array([0.0, 0.3, 0.6, 0.9])
    if ties:
        scores = np.round(scores, 0)
    res = friedman_nemenyi(scores, ["a", "b", "c", "d"])
    ref = stats.friedmanchisquare(*scores.T)
    assert res.friedman.statistic == pytest.approx(ref.statistic, rel=1e-12)
    assert res.friedman.p_value == pytest.approx(ref.pvalue, rel=1e-10)
    assert res.friedman.df == 3


def test_average_ranks_worked_example() -> None:
    # Higher is better: rank 1 = best. Block 2 ties b and c for ranks 1-2 (1.5 each).
    scores = [[0.9, 0.8, 0.7], [0.6, 0.9, 0.9], [0.5, 0.7, 0.6]]
    res = friedman_nemenyi(scores, ["a", "b", "c"])
    assert res.average_ranks == pytest.approx(
        ((1 + 3 + 3) / 3, (2 + 1.5 + 1) / 3, (3 + 1.5 + 2) / 3)
    )
    lower = friedman_nemenyi(scores, ["a", "b", "c"], greater_is_better=False)
    assert lower.average_ranks == pytest.approx(tuple(4 - r for r in res.average_ranks))


def test_nemenyi_q_matches_demsar_table() -> None:
    # Demšar (2006), Table 5(a): q_0.05 for k = 2..10
    table = [1.960, 2.343, 2.569, 2.728, 2.850, 2.949, 3.031, 3.102, 3.164]
    for k, q in zip(range(2, 11), table, strict=True):
        assert nemenyi_q(k, 0.05) == pytest.approx(q, abs=1.5e-3)
    assert nemenyi_q(4, 0.10) == pytest.approx(2.291, abs=1.5e-3)  # Table 5(b)


def test_critical_difference_and_pairwise_p_agree() -> None:
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(20, 5)) + np.linspace(0, 1.5, 5)
    res = friedman_nemenyi(scores, list("abcde"))
    k, n = 5, 20
    assert res.critical_difference == pytest.approx(
        stats.studentized_range.ppf(0.95, k, np.inf)
        / math.sqrt(2)
        * math.sqrt(k * (k + 1) / (6 * n))
    )
    ranks = np.array(res.average_ranks)
    p = np.array(res.pairwise_p)
    assert np.allclose(p, p.T) and np.all(np.diag(p) == 1.0)
    for i in range(k):
        for j in range(i + 1, k):
            # a pair differs at alpha exactly when its rank gap reaches the CD
            gap = abs(ranks[i] - ranks[j])
            if abs(gap - res.critical_difference) > 1e-9:
                assert (p[i, j] < 0.05) == (gap > res.critical_difference)
    # cliques: every group's rank spread is below the CD
    for group in res.cliques():
        spread = [res.average_ranks[res.names.index(g)] for g in group]
        assert max(spread) - min(spread) < res.critical_difference
    assert res.ordered()[0][0] == "e"  # the best (largest offset) ranks first


def test_kendall_w_and_perfect_concordance() -> None:
    scores = np.tile([3.0, 2.0, 1.0], (6, 1))  # every block ranks a > b > c
    res = friedman_nemenyi(scores, ["a", "b", "c"])
    assert res.friedman.effect_size == pytest.approx(1.0)  # Kendall's W
    assert res.iman_davenport_f == math.inf and res.iman_davenport_p == 0.0
    assert res.average_ranks == (1.0, 2.0, 3.0)


def test_all_tied_blocks_give_p_one() -> None:
    res = friedman_nemenyi(np.ones((4, 3)), ["a", "b", "c"])
    assert res.friedman.p_value == 1.0 and res.friedman.statistic == 0.0


def test_friedman_input_errors() -> None:
    with pytest.raises(StatisticsError, match="3 columns"):
        friedman_nemenyi(np.ones((4, 2)), ["a", "b", "c"])
    with pytest.raises(StatisticsError, match="at least 2"):
        friedman_nemenyi(np.ones((1, 3)), ["a", "b", "c"])
    with pytest.raises(StatisticsError, match="unique"):
        friedman_nemenyi(np.ones((4, 2)), ["a", "a"])
    res = friedman_nemenyi([[1.0, 2.0], [np.nan, 1.0], [3.0, 1.0], [2.0, 3.0]], ["a", "b"])
    assert res.n_blocks == 3 and "dropped" in res.friedman.notes
