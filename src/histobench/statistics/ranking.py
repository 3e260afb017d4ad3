"""Many extractors over many data sets or targets: Friedman test and Nemenyi post-hoc (Demšar 2006).

Blocks are the rows (data sets, tasks or targets), extractors the columns. The Friedman
chi-square equals ``scipy.stats.friedmanchisquare`` (with its tie correction); the Nemenyi
critical difference uses the studentized range with infinite degrees of freedom.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from histobench.statistics.results import StatisticsError, TestResult, _jsonable


@dataclass(frozen=True)
class FriedmanNemenyiResult:
    """Friedman omnibus test, average ranks (1 = best) and Nemenyi pairwise comparisons."""

    names: tuple[str, ...]
    friedman: TestResult  # effect_size: Kendall's W (concordance of the rankings, 0..1)
    iman_davenport_f: float  # Iman & Davenport's less conservative F version of the statistic
    iman_davenport_p: float
    average_ranks: tuple[float, ...]
    critical_difference: float
    alpha: float
    n_blocks: int
    pairwise_p: tuple[tuple[float, ...], ...]  # Nemenyi p-values, k × k, 1 on the diagonal

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))

    def ordered(self) -> list[tuple[str, float]]:
        """(name, average rank) from best to worst."""
        return sorted(zip(self.names, self.average_ranks, strict=True), key=lambda x: x[1])

    def cliques(self) -> list[tuple[str, ...]]:
        """Maximal runs of extractors (in rank order) whose rank spread is below the CD: the bars
        of a critical-difference diagram, i.e. groups not shown to differ."""
        order = self.ordered()
        out: list[tuple[str, ...]] = []
        for i in range(len(order)):
            j = i
            while j + 1 < len(order) and order[j + 1][1] - order[i][1] < self.critical_difference:
                j += 1
            group = tuple(name for name, _ in order[i : j + 1])
            if len(group) > 1 and not any(set(group) <= set(g) for g in out):
                out.append(group)
        return out


def nemenyi_q(k: int, alpha: float = 0.05) -> float:
    """q_alpha of the Nemenyi test: the studentized range quantile (df = ∞) divided by √2."""
    return float(stats.studentized_range.ppf(1.0 - alpha, k, np.inf)) / math.sqrt(2.0)


def friedman_nemenyi(
    scores: Any,
    names: Sequence[str],
    *,
    alpha: float = 0.05,
    greater_is_better: bool = True,
) -> FriedmanNemenyiResult:
    """Friedman test and Nemenyi critical difference for a (blocks, extractors) score table.

    CD = q_alpha · sqrt(k(k+1) / (6N)); two extractors differ when their average ranks differ by
    at least CD. Blocks holding a NaN are dropped (noted), since ranks need every extractor.
    """
    x = np.asarray(scores, dtype=float)
    names = tuple(str(n) for n in names)
    if x.ndim != 2 or x.shape[1] != len(names):
        raise StatisticsError(
            f"scores must be a (blocks, extractors) table with {len(names)} columns, got {x.shape}"
        )
    if len(set(names)) != len(names):
        raise StatisticsError(f"extractor names must be unique, got {list(names)}")
    keep = np.isfinite(x).all(axis=1)
    x = x[keep]
    n, k = x.shape
    if k < 2 or n < 2:
        raise StatisticsError(
            f"the Friedman test needs at least 2 extractors and 2 complete blocks"
            f" (data sets or targets), got {k} and {n}"
        )
    if not 0 < alpha < 1:
        raise StatisticsError(f"alpha must be in (0, 1), got {alpha}")
    ranks = stats.rankdata(-x if greater_is_better else x, axis=1)  # 1 = best, ties averaged
    avg = ranks.mean(axis=0)
    chi2 = 12.0 * n / (k * (k + 1)) * float(np.sum((avg - (k + 1) / 2.0) ** 2))
    # Tie correction as in scipy: divide by 1 − Σ(t³ − t) / (N k (k² − 1)).
    ties = sum(
        float(np.sum(c**3 - c)) for c in (np.unique(row, return_counts=True)[1] for row in ranks)
    )
    denom = 1.0 - ties / (n * k * (k * k - 1))
    notes = "Friedman chi-square (tie-corrected); effect size: Kendall's W"
    if not keep.all():
        notes += f"; {int((~keep).sum())} block(s) with NaN dropped"
    if denom <= 0:  # every block tied across all extractors
        chi2, p, w = 0.0, 1.0, 0.0
        notes += "; all extractors tie in every block"
    else:
        chi2 /= denom
        p = float(stats.chi2.sf(chi2, k - 1))
        w = chi2 / (n * (k - 1))
    friedman = TestResult(
        "friedman", chi2, p, float(k - 1), w, math.nan, math.nan, n, "two-sided", notes
    )
    if chi2 >= n * (k - 1):  # perfect concordance: F is infinite
        f_id, p_id = math.inf, 0.0
    else:
        f_id = (n - 1) * chi2 / (n * (k - 1) - chi2)
        p_id = float(stats.f.sf(f_id, k - 1, (k - 1) * (n - 1)))
    se = math.sqrt(k * (k + 1) / (6.0 * n))
    q = np.abs(avg[:, None] - avg[None, :]) / se * math.sqrt(2.0)
    pair = np.ones((k, k))
    iu = np.triu_indices(k, 1)
    pair[iu] = np.minimum(1.0, stats.studentized_range.sf(q[iu], k, np.inf))
    pair[(iu[1], iu[0])] = pair[iu]
    return FriedmanNemenyiResult(
        names=names,
        friedman=friedman,
        iman_davenport_f=float(f_id),
        iman_davenport_p=p_id,
        average_ranks=tuple(float(r) for r in avg),
        critical_difference=nemenyi_q(k, alpha) * se,
        alpha=alpha,
        n_blocks=n,
        pairwise_p=tuple(tuple(float(v) for v in row) for row in pair),
    )
