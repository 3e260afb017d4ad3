"""Three or more extractors: every pair under the paired test, Holm over all pairs; optionally
Friedman + Nemenyi over targets.

The verdict is the pairwise test (default: the corrected repeated-CV t-test) of every pair of
extractors on the shared folds, with Holm's adjustment over the m(m−1)/2 pairs. Friedman's
test and the Nemenyi critical-difference diagram need blocks that are separate problems; CV
repeats are not (they re-split the same items, so treating them as blocks overstates the
evidence, the flaw the corrected t-test exists to avoid), and they are never used as blocks.
``blocks="targets"`` ranks the extractors within each target (class or gene, by its mean
score) and says so in ``blocking_rule``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

from histobench.benchmark.store import ResultsStore, RunRecord
from histobench.leaderboard.pairing import ComparisonError, check_paired
from histobench.plugins.errors import ConfigError
from histobench.statistics import FriedmanNemenyiResult, StatisticsError, friedman_nemenyi, holm
from histobench.statistics.results import _jsonable

BLOCKS = ("none", "targets")
ALPHA = 0.05
# What each pair's row keeps of the two-extractor comparison.
PAIR_FIELDS = (
    "extractors",
    "run_ids",
    "mean_a",
    "mean_b",
    "difference",
    "headline_test",
    "statistic",
    "p_value",
    "df",
    "ci_low",
    "ci_high",
    "ci_of",
    "assumption",
)


def block_table(
    store: ResultsStore, runs: Sequence[RunRecord], blocks: str
) -> tuple[np.ndarray, str]:
    """(blocks, extractors) scores for Friedman, and the blocking rule in words. Only targets
    are blocks: CV repeats re-split the same items and are refused."""
    if blocks != "targets":
        raise ConfigError(
            f"Friedman blocks must be {BLOCKS[1]!r} (separate targets), not {blocks!r}: CV"
            " repeats re-split the same items and are not independent blocks"
        )
    per = [store.target_results(r.run_id) for r in runs]
    names = [t for t in per[0] if all(t in p for p in per[1:])]
    if len(names) < 2:
        raise ComparisonError(
            f"--blocks targets: the runs share {len(names)} per-target score(s); Friedman"
            " needs at least 2 targets"
        )
    table = np.array([[p[t].mean for p in per] for t in names])
    kind = runs[0].details.get("target_kind", "target")
    rule = (
        f"blocks = the {len(names)} {kind} targets (each extractor's mean score per {kind});"
        " targets share the same units, so ranks describe consistency across targets"
    )
    return table, rule


def pairwise_holm(
    runs: Sequence[RunRecord], pair: Callable[[RunRecord, RunRecord], dict[str, Any]]
) -> list[dict[str, Any]]:
    """Every pair (better-ranked run first) under ``pair``, Holm-adjusted over all pairs."""
    rows = []
    for a, b in combinations(runs, 2):
        c = pair(a, b)
        rows.append({k: c.get(k) for k in PAIR_FIELDS})
    adjusted = holm(np.array([np.nan if r["p_value"] is None else r["p_value"] for r in rows]))
    for row, p in zip(rows, adjusted, strict=True):
        row["p_holm"] = float(p) if np.isfinite(p) else None
        row["significant_holm"] = bool(np.isfinite(p) and p <= ALPHA)
    return rows


def _friedman(
    store: ResultsStore, runs: Sequence[RunRecord], blocks: str
) -> tuple[FriedmanNemenyiResult, str]:
    table, rule = block_table(store, runs, blocks)
    try:
        names = [r.extractor for r in runs]
        greater = runs[0].greater_is_better
        result = friedman_nemenyi(table, names, alpha=ALPHA, greater_is_better=greater)
    except StatisticsError as err:
        raise ComparisonError(f"{err} (Friedman over {blocks})") from err
    return result, rule


def friedman_record(fn: FriedmanNemenyiResult, rule: str) -> dict[str, Any]:
    names = list(fn.names)
    return {
        **fn.friedman.to_dict(),
        "blocking_rule": rule,
        "effect_size_meaning": "Kendall's W (agreement of the rankings across blocks)",
        "nemenyi": {
            "average_ranks": dict(zip(names, fn.average_ranks, strict=True)),
            "critical_difference": fn.critical_difference,
            "alpha": fn.alpha,
            "n_blocks": fn.n_blocks,
            "pairwise_p": {
                a: dict(zip(names, row, strict=True))
                for a, row in zip(names, fn.pairwise_p, strict=True)
            },
            "not_different_groups": [list(g) for g in fn.cliques()],
            "iman_davenport_f": fn.iman_davenport_f,
            "iman_davenport_p": fn.iman_davenport_p,
        },
    }


def compare_many(
    store: ResultsStore,
    runs: Sequence[RunRecord],
    pair: Callable[[RunRecord, RunRecord], dict[str, Any]],
    *,
    test: str = "auto",
    blocks: str = "none",
    figure_dir: Path | None = None,
) -> dict[str, Any]:
    """All pairs of ≥ 3 paired runs under ``pair`` with Holm; Friedman + Nemenyi (and the CD
    diagram when ``figure_dir`` is given) only with ``blocks="targets"``."""
    if blocks not in BLOCKS:
        raise ConfigError(f"--blocks must be one of {', '.join(BLOCKS)}, not {blocks!r}")
    check_paired(runs)
    sign = 1.0 if runs[0].greater_is_better else -1.0
    ranked = sorted(runs, key=lambda r: -sign * r.mean)
    friedman, cd_png = None, None
    if blocks == "targets":
        fn, rule = _friedman(store, runs, blocks)
        friedman = friedman_record(fn, rule)
        if figure_dir is not None:
            from histobench.leaderboard.figures import critical_difference_diagram, save_figure

            title = (
                f"{runs[0].task}: Friedman p = {fn.friedman.p_value:.2g} over {fn.n_blocks}"
                f" targets, α = {fn.alpha:g}"
            )
            stem = figure_dir / f"cd-{runs[0].task}-{runs[0].evaluation_id}"
            cd_png = str(save_figure(critical_difference_diagram(fn, title=title), stem)[0])
    return _jsonable(
        {
            "task": runs[0].task,
            "metric": runs[0].metric,
            "greater_is_better": runs[0].greater_is_better,
            "extractors": [r.extractor for r in runs],
            "run_ids": [r.run_id for r in runs],
            "evaluation_id": runs[0].evaluation_id,
            "plan_id": runs[0].plan_id,
            "dataset": runs[0].dataset,
            "repeats": runs[0].repeats,
            "folds": runs[0].folds,
            "means": {r.extractor: r.mean for r in runs},
            "test": "pairwise",
            "pairwise_test": test,
            "verdict": f"every pair under {test}, Holm-adjusted over"
            f" {len(runs) * (len(runs) - 1) // 2} pairs",
            "best": ranked[0].extractor,
            "pairwise": pairwise_holm(ranked, pair),
            "blocks": blocks,
            "friedman": friedman,
            "cd_diagram": cd_png,
        }
    )
