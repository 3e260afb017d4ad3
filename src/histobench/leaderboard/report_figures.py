"""The figures of the HTML report, per evaluation group: the study's figures 2–6 where they
apply and the critical-difference diagram over targets (never over CV repeats), saved as PNG
and SVG."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from histobench.benchmark.store import ResultsStore, RunRecord
from histobench.leaderboard import figures
from histobench.leaderboard.many import block_table
from histobench.leaderboard.pairing import is_auc_metric, unpaired_reason
from histobench.leaderboard.tables import Leaderboard, plural
from histobench.plugins.errors import HistobenchError
from histobench.statistics.results import StatisticsError

MAX_SCATTER_GENES = 6


@dataclass(frozen=True)
class FigureFile:
    task: str
    name: str  # e.g. "figure2"
    caption: str
    png: Path
    svg: Path


# --------------------------------------------------------------------------------------------
# Figures per task
# --------------------------------------------------------------------------------------------


def task_figures(
    store: ResultsStore, lb: Leaderboard, runs: Sequence[RunRecord], figure_dir: Path
) -> list[FigureFile]:
    """Make and save every figure that applies to each task of the leaderboard."""
    out: list[FigureFile] = []
    by_id = {r.run_id: r for r in runs}
    for label, d in lb.details.items():
        group = [by_id[r["run_id"]] for r in lb.rows if r["group"] == label]
        metric, kind = d["metric"], d["target_kind"]
        task = group_slug(label, d)

        def save(name: str, fig: Any, caption: str, task: str = task) -> None:
            png, svg = figures.save_figure(fig, figure_dir / f"{task}-{name}")
            out.append(FigureFile(task, name, caption, png, svg))

        save(
            "figure2",
            figures.repeat_distributions(
                {r.extractor: r.repeat_scores for r in group},
                metric=metric,
                title=f"{metric} over {group[0].repeats} CV repeats",
            ),
            f"{metric} of each CV repeat per extractor (Figure 2 of the study).",
        )
        per = {r.extractor: store.target_results(r.run_id) for r in group}
        if not any(per.values()):
            pass
        elif is_auc_metric(metric):
            genes = [row["target"] for row in d["targets"]]
            aucs = {e: [p[g].mean if g in p else np.nan for g in genes] for e, p in per.items()}
            sds = {
                e: [
                    float(np.nanstd(p[g].repeat_scores, ddof=1))
                    if g in p and p[g].repeat_scores.size > 1
                    else 0.0
                    for g in genes
                ]
                for e, p in per.items()
            }
            save(
                "figure6",
                figures.per_gene_auc(genes, aucs, errors=sds, title=f"{task}: AUC per {kind}"),
                f"AUC per {kind}, mean ± SD over repeats; dashed line: chance (Figure 6).",
            )
        elif kind == "gene":
            _gene_figures(store, d, group, per, save)
        else:
            save(
                "figure3",
                figures.per_class_bars(
                    {e: {t: tr.repeat_scores for t, tr in p.items()} for e, p in per.items()},
                    metric=metric,
                    title=f"{task}: per-{kind} {metric}",
                ),
                f"per-{kind} {metric}, mean ± SD over repeats (Figure 3).",
            )
        cd = _cd_figure(store, group)
        if cd is not None:
            fig, n_blocks = cd
            save(
                "cd",
                fig,
                f"Critical-difference diagram (Friedman + Nemenyi, blocks = the {n_blocks}"
                f" {plural(kind)}; CV repeats are never blocks): extractors joined by a bar are"
                " not shown to differ.",
            )
    return out


def _gene_figures(
    store: ResultsStore,
    d: dict[str, Any],
    group: list[RunRecord],
    per: dict[str, dict[str, Any]],
    save: Any,
) -> None:
    best = group[0]
    if len(group) >= 2:
        other = group[1]
        genes = [g for g in per[best.extractor] if g in per[other.extractor]]
        diff = [per[best.extractor][g].mean - per[other.extractor][g].mean for g in genes]
        versus = d["versus_best"].get(other.extractor, {})
        q = {row["target"]: row.get("p_bh") for row in versus.get("targets", [])}
        sig = [q.get(g) is not None and q[g] <= 0.05 for g in genes]
        if genes:
            save(
                "figure4",
                figures.per_gene_difference(
                    genes,
                    diff,
                    significant=sig,
                    labels=(best.extractor, other.extractor),
                    metric=d["metric"],
                ),
                f"{d['metric']} of {best.extractor} minus {other.extractor} per gene, sorted;"
                " stars: paired difference significant after Benjamini-Hochberg (q ≤ 0.05)"
                " (Figure 4).",
            )
    preds = store.predictions(best.run_id)
    scores = per[best.extractor]
    chosen = sorted(
        (g for g in preds if g in scores and math.isfinite(scores[g].mean)),
        key=lambda g: -scores[g].mean,
    )[:MAX_SCATTER_GENES]
    if chosen:
        panels = {
            g: (preds[g].y_true, np.asarray(preds[g].y_pred, float).mean(axis=0)) for g in chosen
        }
        save(
            "figure5",
            figures.observed_vs_predicted(panels, ylabel=f"predicted ({best.extractor})"),
            f"observed vs out-of-fold predicted (mean over repeats) for the {len(chosen)} genes"
            f" {best.extractor} predicts best (Figure 5).",
        )


def group_slug(label: str, d: dict[str, Any]) -> str:
    """File-name stem of an evaluation group: the task, plus its evaluation id when the task
    has several groups."""
    task = str(d.get("task", label))
    return task if label == task else f"{task}-{str(d.get('evaluation_id', ''))[:8]}"


def _cd_figure(store: ResultsStore, group: list[RunRecord]) -> tuple[Any, int] | None:
    """The CD diagram over targets (classes, genes) when ≥ 3 paired extractors share ≥ 2 of
    them; never over CV repeats, which re-split the same items."""
    from histobench.statistics import friedman_nemenyi

    paired = [r for r in group if unpaired_reason(r, group[0]) is None]
    if len(paired) < 3:
        return None
    try:
        table, _ = block_table(store, paired, "targets")
        fn = friedman_nemenyi(
            table, [r.extractor for r in paired], greater_is_better=paired[0].greater_is_better
        )
    except (HistobenchError, StatisticsError):
        return None
    return figures.critical_difference_diagram(fn), fn.n_blocks
