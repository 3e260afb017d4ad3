"""Leaderboard tables from the results store: Markdown, CSV and JSON.

One row per (task, extractor), the newest run of each. Per row: headline mean ± sd over
repeats, a 95 % CI of the mean, rank within the task, the p-value against the task's best
extractor under the default corrected resampled t-test with Holm adjustment over the
challengers, repeats × folds, a per-target summary against the best (targets better / worse and
the exact sign test), and provenance (code version, config hash, split plan, date, device,
precision). ``Leaderboard.details`` holds the per-target tables (per class or per gene, as the
task's ``target_kind`` says).
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats

from histobench.benchmark.store import ResultsStore, RunRecord
from histobench.plugins.specs import digest
from histobench.statistics import corrected_resampled_ttest, holm
from histobench.statistics.results import _jsonable

CONFIDENCE = 0.95
MD_MAX_TARGETS = 30  # longer per-target tables go to JSON/HTML; a README needs the gist


def corrected_ci(run: RunRecord, n_train: float, n_test: float) -> tuple[float, float]:
    """95 % CI of the mean score, centred on the run's mean, with the Nadeau–Bengio variance
    correction applied to the R·K fold scores: half-width t(J−1) · sqrt((1/J + n_test/n_train)
    · var(folds)). The plain 1/J would treat overlapping CV folds as independent samples and
    give an interval far too narrow."""
    folds = run.fold_scores[np.isfinite(run.fold_scores)]
    j = folds.size
    if j < 2 or not (n_train > 0 and n_test > 0):
        return math.nan, math.nan
    se = math.sqrt((1.0 / j + n_test / n_train) * float(folds.var(ddof=1)))
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, j - 1)) * se
    return run.mean - half, run.mean + half


@dataclass
class Leaderboard:
    rows: list[dict[str, Any]]
    details: dict[str, dict[str, Any]] = field(default_factory=dict)

    def markdown(self) -> str:
        return to_markdown(self.rows, self.details)

    def csv(self) -> str:
        return to_csv(self.rows)

    def json(self) -> str:
        return to_json(self.rows, self.details)


def build_leaderboard(
    store: ResultsStore, task: str | None = None, runs: list[RunRecord] | None = None
) -> Leaderboard:
    """The leaderboard of ``runs`` (default: the newest run of each extractor per task)."""
    runs = store.latest_runs(task) if runs is None else runs
    rows = leaderboard_rows(runs, store)
    return Leaderboard(rows, task_details(runs, rows, store))


def _provenance(run: RunRecord) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "date": run.created,
        "device": run.env.get("device"),
        "precision": run.env.get("precision"),
        "code_version": run.code_version,
        "config_hash": digest(run.config, length=12),
        "dataset": run.dataset,
        "plan_id": run.plan_id,
    }


def leaderboard_rows(
    runs: list[RunRecord], store: ResultsStore | None = None
) -> list[dict[str, Any]]:
    """One row per (task, extractor), ranked within its task (1 = best, ties share a rank).

    ``store`` supplies split plans (fold sizes) and per-target scores; without one the store at
    ``HISTOBENCH_HOME`` is opened.
    """
    if store is None:
        from histobench.benchmark import home

        with ResultsStore(home.results_db()) as own:
            return leaderboard_rows(runs, own)
    rows: list[dict[str, Any]] = []
    by_run: dict[str, RunRecord] = {}
    for run in runs:
        plan = store.load_plan(run.plan_id)
        n_train, n_test = plan.mean_train_test_sizes() if plan else (math.nan, math.nan)
        lo, hi = corrected_ci(run, n_train, n_test)
        by_run[run.run_id] = run
        rows.append(
            {
                "task": run.task,
                "extractor": run.extractor,
                "metric": run.metric,
                "rank": 0,
                "mean": run.mean,
                "std": run.std,
                "ci95_low": lo,
                "ci95_high": hi,
                "best": "",
                "diff_vs_best": math.nan,
                "p_vs_best": math.nan,
                "p_holm_vs_best": math.nan,
                "test_vs_best": "",
                "targets_better": None,
                "targets_worse": None,
                "targets_total": None,
                "sign_test_p": math.nan,
                "repeats": run.repeats,
                "folds": run.folds,
                "n_train": n_train,
                "n_test": n_test,
                **_provenance(run),
                "greater_is_better": run.greater_is_better,
                "note": "",
            }
        )
    for task in sorted({r["task"] for r in rows}):
        group = [r for r in rows if r["task"] == task]
        _rank_and_test(group, by_run, store)
    rows.sort(key=lambda r: (r["task"], r["rank"], r["extractor"]))
    return [_jsonable(r) for r in rows]


def _rank_and_test(
    group: list[dict[str, Any]], by_run: dict[str, RunRecord], store: ResultsStore
) -> None:
    from histobench.leaderboard.compare import per_target

    sign = -1.0 if group[0]["greater_is_better"] else 1.0
    ranks = stats.rankdata([sign * r["mean"] for r in group], method="min")
    for r, rank in zip(group, ranks, strict=True):
        r["rank"] = int(rank)
    best_row = min(group, key=lambda r: (r["rank"], r["extractor"]))
    best = by_run[best_row["run_id"]]
    challengers = []
    for r in group:
        r["best"] = best.extractor
        if r is best_row:
            r["diff_vs_best"] = 0.0
            continue
        run = by_run[r["run_id"]]
        r["diff_vs_best"] = run.mean - best.mean
        if run.plan_id != best.plan_id or run.dataset_fingerprint != best.dataset_fingerprint:
            r["note"] = f"not paired with {best.extractor} (plan {best.plan_id}): no p-value"
            continue
        if math.isfinite(r["n_train"]):
            res = corrected_resampled_ttest(
                best.fold_scores, run.fold_scores, r["n_train"], r["n_test"]
            )
            r["p_vs_best"], r["test_vs_best"] = res.p_value, "corrected resampled t-test"
            challengers.append(r)
        targets = per_target(store, run, best, "nb-ttest")
        if targets["available"]:
            r["targets_better"] = targets["n_improved"]
            r["targets_worse"] = targets["n_worse"]
            r["targets_total"] = targets["n_targets"]
            s = targets["sign_test"]
            r["sign_test_p"] = math.nan if s is None else s["p_value"]
    adjusted = holm(np.array([r["p_vs_best"] for r in challengers]))
    for r, p in zip(challengers, adjusted, strict=True):
        r["p_holm_vs_best"] = float(p)


def task_details(
    runs: list[RunRecord], rows: list[dict[str, Any]], store: ResultsStore
) -> dict[str, dict[str, Any]]:
    """Per task: the per-target table (mean over repeats per extractor, extractors in rank
    order) and each challenger's per-target comparison against the best (corrected test per
    target, Holm and BH, sign test)."""
    from histobench.leaderboard.compare import per_target

    out: dict[str, dict[str, Any]] = {}
    by_id = {r.run_id: r for r in runs}
    for task in sorted({r["task"] for r in rows}):
        group = [r for r in rows if r["task"] == task]
        ordered = [by_id[r["run_id"]] for r in group]
        per = {run.extractor: store.target_results(run.run_id) for run in ordered}
        targets = list(dict.fromkeys(t for p in per.values() for t in p))
        table = [
            {
                "target": t,
                **{
                    e: (per[e][t].mean if t in per[e] else None)
                    for e in (run.extractor for run in ordered)
                },
            }
            for t in targets
        ]
        significant = {
            e: sum(bool(tr.extra.get("significant")) for tr in p.values())
            for e, p in per.items()
            if any("significant" in tr.extra for tr in p.values())
        }
        best = ordered[0]
        versus = {}
        for run in ordered[1:]:
            if run.plan_id == best.plan_id and run.dataset_fingerprint == best.dataset_fingerprint:
                versus[run.extractor] = per_target(store, run, best, "nb-ttest")
        out[task] = {
            "metric": group[0]["metric"],
            "target_kind": ordered[0].details.get("target_kind", "target"),
            "extractors": [run.extractor for run in ordered],
            "best": best.extractor,
            "targets": table,
            "n_significant": significant,
            "versus_best": versus,
        }
    return _jsonable(out)


# --------------------------------------------------------------------------------------------
# Renderers
# --------------------------------------------------------------------------------------------


def plural(kind: str) -> str:
    return "classes" if kind == "class" else f"{kind}s"


def fmt(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def fmt_p(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.2g}" if value < 0.001 else f"{value:.3f}"


def to_markdown(
    rows: list[dict[str, Any]], details: dict[str, dict[str, Any]] | None = None
) -> str:
    if not rows:
        return "_No runs stored yet: try `bench demo` or `bench run`._\n"
    out = []
    for task in sorted({r["task"] for r in rows}):
        group = [r for r in rows if r["task"] == task]
        g0 = group[0]
        out.append(f"### {task} ({g0['metric']}, {g0['dataset']})\n")
        out.append(
            f"| rank | extractor | {g0['metric']} mean ± sd | 95% CI | p vs best | Holm p |"
            " targets +/− (sign p) | repeats × folds | code | config | plan | date | device |"
            " precision |"
        )
        out.append("| ---: | --- | --- | --- | ---: | ---: | --- | --- |" + " --- |" * 6)
        for r in group:
            targets = (
                f"{r['targets_better']}/{r['targets_worse']} ({fmt_p(r['sign_test_p'])})"
                if r["targets_better"] is not None
                else "–"
            )
            out.append(
                f"| {r['rank']} | {r['extractor']} | {fmt(r['mean'])} ± {fmt(r['std'])} | "
                f"{fmt(r['ci95_low'])} – {fmt(r['ci95_high'])} | {fmt_p(r['p_vs_best'])} | "
                f"{fmt_p(r['p_holm_vs_best'])} | {targets} | {r['repeats']} × {r['folds']} | "
                f"`{r['code_version']}` | `{r['config_hash']}` | `{r['plan_id']}` | "
                f"{r['date']} | {r['device']} | {r['precision']} |"
            )
        notes = [f"{r['extractor']}: {r['note']}" for r in group if r["note"]]
        out.append("")
        out.append(
            f"p vs best: corrected resampled t-test (Nadeau & Bengio) of each extractor against"
            f" {g0['best']} on the shared folds; Holm-adjusted over the challengers. 95% CI:"
            " corrected for the overlap of CV training sets."
        )
        out.extend(f"- {n}" for n in notes)
        out.append("")
        if details and task in details:
            out.extend(_markdown_details(details[task]))
    return "\n".join(out)


def _markdown_details(d: dict[str, Any]) -> list[str]:
    names, kind = d["extractors"], d["target_kind"]
    rows = d["targets"]
    if not rows:
        return []
    out = [f"Per-{kind} {d['metric']} (mean over repeats):\n"]
    out.append(f"| {kind} | " + " | ".join(names) + " |")
    out.append("| --- |" + " ---: |" * len(names))
    for row in rows[:MD_MAX_TARGETS]:
        out.append(f"| {row['target']} | " + " | ".join(fmt(row[n]) for n in names) + " |")
    if len(rows) > MD_MAX_TARGETS:
        more = len(rows) - MD_MAX_TARGETS
        out.append(f"\n_… {more} more {plural(kind)} in the JSON and HTML output._")
    out.append("")
    for name, v in d["versus_best"].items():
        if not v.get("available"):
            out.append(f"- {name} vs {d['best']}: {v.get('note', 'no per-target scores')}")
            continue
        s = v["sign_test"]
        out.append(
            f"- {name} vs {d['best']}: better on {v['n_improved']}, worse on {v['n_worse']} of"
            f" {v['n_targets']} {plural(kind)} (sign test p = {fmt_p(s['p_value'] if s else None)});"
            f" significant after Holm: {v['n_better_holm']} better, {v['n_worse_holm']} worse;"
            f" after BH: {v['n_better_bh']} better, {v['n_worse_bh']} worse ({v['test']} test"
            f" per {kind})"
        )
    for name, n in d.get("n_significant", {}).items():
        out.append(f"- {name}: {n} significant {plural(kind)} (the task's recorded rule)")
    out.append("")
    return out


def to_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return buf.getvalue()


def to_json(rows: list[dict[str, Any]], details: dict[str, dict[str, Any]] | None = None) -> str:
    return json.dumps({"rows": rows, "details": details or {}}, indent=2, default=str) + "\n"
