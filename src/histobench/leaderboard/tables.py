"""Leaderboard tables from the results store: Markdown, CSV and JSON."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import numpy as np
from scipy import stats

from histobench.benchmark.specs import digest
from histobench.benchmark.store import RunRecord


def _ci95(scores: np.ndarray) -> tuple[float, float]:
    """Spread of the repeat-level metric: the central 95% of repeats (not a test)."""
    finite = scores[np.isfinite(scores)]
    if len(finite) < 2:
        return float("nan"), float("nan")
    return float(np.percentile(finite, 2.5)), float(np.percentile(finite, 97.5))


def leaderboard_rows(runs: list[RunRecord]) -> list[dict[str, Any]]:
    """One row per (task, extractor): the newest run, ranked within its task and plan."""
    rows = []
    for run in runs:
        lo, hi = _ci95(run.repeat_scores)
        rows.append(
            {
                "task": run.task,
                "extractor": run.extractor,
                "metric": run.metric,
                "mean": run.mean,
                "std": run.std,
                "ci95_low": lo,
                "ci95_high": hi,
                "repeats": run.repeats,
                "folds": run.folds,
                "dataset": run.dataset,
                "plan_id": run.plan_id,
                "run_id": run.run_id,
                "date": run.created,
                "device": run.env.get("device"),
                "precision": run.env.get("precision"),
                "code_version": run.code_version,
                "config_hash": digest(run.config, length=12),
                "greater_is_better": run.greater_is_better,
            }
        )
    for task in {r["task"] for r in rows}:
        group = [r for r in rows if r["task"] == task]
        sign = -1.0 if group[0]["greater_is_better"] else 1.0
        ranks = stats.rankdata([sign * r["mean"] for r in group], method="min")
        for r, rank in zip(group, ranks, strict=True):
            r["rank"] = int(rank)
    rows.sort(key=lambda r: (r["task"], r["rank"], r["extractor"]))
    return rows


def to_markdown(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "_No runs stored yet: try `bench demo` or `bench run`._\n"
    out = []
    for task in sorted({r["task"] for r in rows}):
        group = [r for r in rows if r["task"] == task]
        out.append(f"### {task} ({group[0]['metric']}, {group[0]['dataset']})\n")
        out.append("| rank | extractor | mean ± sd | 95% of repeats | repeats × folds | plan | run |")
        out.append("| ---: | --- | --- | --- | --- | --- | --- |")
        for r in group:
            out.append(
                f"| {r['rank']} | {r['extractor']} | {r['mean']:.4f} ± {r['std']:.4f} | "
                f"{r['ci95_low']:.4f} – {r['ci95_high']:.4f} | {r['repeats']} × {r['folds']} | "
                f"`{r['plan_id']}` | `{r['run_id']}` |"
            )
        out.append("")
    return "\n".join(out)


def to_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return buf.getvalue()


def to_json(rows: list[dict[str, Any]]) -> str:
    return json.dumps({"rows": rows}, indent=2, default=str)
