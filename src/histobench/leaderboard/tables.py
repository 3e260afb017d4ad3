"""Leaderboard tables from the results store: Markdown, CSV and JSON.

Runs are grouped by task and evaluation identity (task options, labels, estimator, metric,
split plan, evaluation code): a table never mixes runs evaluated differently, and a task with
several identities gets one labelled table each. One row per extractor in a group, its newest
run. Per row: headline mean ± sd over
repeats, a 95 % CI of the mean, rank within the task, the p-value against the task's best
extractor under the task's paired test (the unit jackknife for luad-expression, the corrected
resampled t-test otherwise; the CI comes from the same variance) with Holm adjustment over the
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
from histobench.leaderboard.pairing import (
    NO_IDENTITY,
    clip_to,
    evaluation_groups,
    group_label,
    metric_range,
    unpaired_reason,
)
from histobench.leaderboard.per_target import per_target, significance_counts
from histobench.leaderboard.site_drop import site_drop_markdown, site_drops
from histobench.leaderboard.unit_jackknife import default_test, jackknife_ci, jackknife_headline
from histobench.plugins.specs import digest
from histobench.statistics import corrected_resampled_ttest, holm
from histobench.statistics.results import _jsonable

CONFIDENCE = 0.95
MD_MAX_TARGETS = 30  # longer per-target tables go to JSON/HTML; a README needs the gist


def corrected_ci(run: RunRecord, n_train: float, n_test: float) -> tuple[float, float]:
    """95 % CI of the mean score, centred on the run's mean, with the Nadeau–Bengio variance
    correction applied to the R·K fold scores: half-width t(J−1) · sqrt((1/J + n_test/n_train)
    · var(folds)). The plain 1/J would treat overlapping CV folds as independent samples and
    give an interval far too narrow. Clipped to the metric's range (accuracy and AUC in
    [0, 1], r in [−1, 1]): the score cannot lie outside it, so clipping loses no coverage."""
    folds = run.fold_scores[np.isfinite(run.fold_scores)]
    j = folds.size
    if j < 2 or not (n_train > 0 and n_test > 0):
        return math.nan, math.nan
    se = math.sqrt((1.0 / j + n_test / n_train) * float(folds.var(ddof=1)))
    half = float(stats.t.ppf(0.5 + CONFIDENCE / 2, j - 1)) * se
    low, high, _ = clip_to(run.mean - half, run.mean + half, metric_range(run.metric))
    return low, high


@dataclass
class Leaderboard:
    rows: list[dict[str, Any]]
    details: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Patient- vs site-grouped score per extractor, where both kinds of run exist.
    site_drops: list[dict[str, Any]] = field(default_factory=list)

    def markdown(self) -> str:
        return to_markdown(self.rows, self.details) + site_drop_markdown(self.site_drops)

    def csv(self) -> str:
        return to_csv(self.rows)

    def json(self) -> str:
        if not self.site_drops:
            return to_json(self.rows, self.details)
        payload = json.loads(to_json(self.rows, self.details))
        payload["site_drops"] = self.site_drops
        return json.dumps(payload, indent=2, default=str) + "\n"


def build_leaderboard(
    store: ResultsStore, task: str | None = None, runs: list[RunRecord] | None = None
) -> Leaderboard:
    """The leaderboard of ``runs`` (default: every stored run of ``task``, or of every task,
    the newest per extractor within each evaluation group)."""
    runs = store.runs(task) if runs is None else runs
    rows = leaderboard_rows(runs, store)
    shown = {r["run_id"] for r in rows}
    details = task_details([r for r in runs if r.run_id in shown], rows, store)
    return Leaderboard(rows, details, site_drops(store, runs))


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
        "evaluation_id": run.evaluation_id,
        "model": _model_provenance(run),
    }


def _model_provenance(run: RunRecord) -> str:
    """Which recipe and weights produced the features, and their licence (from the extractor
    identity stored with the run); empty where the extractor records none."""
    resolved = run.config.get("resolved") if isinstance(run.config, dict) else None
    ident = (resolved or {}).get("extractor_identity") or {}
    recipe = ident.get("recipe")
    name = recipe.get("recipe") if isinstance(recipe, dict) else None
    parts = [
        f"recipe {name}" if name else "",
        f"weights sha256 {str(ident['weights_digest'])[:12]}"
        if ident.get("weights_digest")
        else "",
        f"licence: {ident['licence']}" if ident.get("licence") else "",
    ]
    return "; ".join(p for p in parts if p)


def leaderboard_rows(
    runs: list[RunRecord], store: ResultsStore | None = None
) -> list[dict[str, Any]]:
    """One row per extractor and evaluation group (task + evaluation identity), ranked within
    its group (1 = best, ties share a rank); ``runs`` oldest first, the newest run of an
    extractor in a group is shown.

    ``store`` supplies split plans (fold sizes) and per-target scores; without one the store at
    ``HISTOBENCH_HOME`` is opened.
    """
    if store is None:
        from histobench.benchmark import home

        with ResultsStore(home.results_db()) as own:
            return leaderboard_rows(runs, own)
    # Per task, the group with the most extractors first: the main table, then the others.
    groups = sorted(evaluation_groups(runs).items(), key=lambda kv: (kv[0][0], -len(kv[1])))
    rows: list[dict[str, Any]] = []
    by_run: dict[str, RunRecord] = {}
    order: dict[str, int] = {}
    for (task, identity), members in groups:
        others = [g[0] for (t, i), g in groups if t == task and i != identity]
        label = group_label(task, members, others)
        order[label] = len(order)
        for run in members:
            by_run[run.run_id] = run
            rows.append({**_row(run, store), "group": label})
    for label in order:
        _rank_and_test([r for r in rows if r["group"] == label], by_run, store)
    rows.sort(key=lambda r: (order[r["group"]], r["rank"], r["extractor"]))
    return [_jsonable(r) for r in rows]


def _row(run: RunRecord, store: ResultsStore) -> dict[str, Any]:
    plan = store.load_plan(run.plan_id)
    n_train, n_test = plan.mean_train_test_sizes() if plan else (math.nan, math.nan)
    if default_test(run) == "jackknife":
        lo, hi = clip_to(*jackknife_ci(store, run), metric_range(run.metric))[:2]
    else:
        lo, hi = corrected_ci(run, n_train, n_test)
    return {
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
        "paired_test": default_test(run),
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


def _rank_and_test(
    group: list[dict[str, Any]], by_run: dict[str, RunRecord], store: ResultsStore
) -> None:
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
        reason = unpaired_reason(run, best)
        if reason:  # only runs stored without an identity end up here: they share a group
            r["note"] = f"not paired with {best.extractor}: no p-value ({reason})"
            continue
        test = default_test(best)
        if test == "jackknife":
            res = jackknife_headline(store, best, run)
            r["p_vs_best"], r["test_vs_best"] = res.p_value, "unit jackknife"
            challengers.append(r)
        elif math.isfinite(r["n_train"]):
            res = corrected_resampled_ttest(
                best.fold_scores, run.fold_scores, r["n_train"], r["n_test"]
            )
            r["p_vs_best"], r["test_vs_best"] = res.p_value, "corrected resampled t-test"
            challengers.append(r)
        targets = per_target(store, run, best, test)
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
    """Per evaluation group (keyed by its label): the per-target table (mean over repeats per
    extractor, extractors in rank order), each challenger's per-target comparison against the
    best (corrected test per target, Holm and BH, sign test) and each extractor's count of
    significant targets after Benjamini–Hochberg."""
    out: dict[str, dict[str, Any]] = {}
    by_id = {r.run_id: r for r in runs}
    for label in dict.fromkeys(r["group"] for r in rows):
        group = [r for r in rows if r["group"] == label]
        ordered = [by_id[r["run_id"]] for r in group]
        per = {run.extractor: store.target_results(run.run_id) for run in ordered}
        targets = list(dict.fromkeys(t for p in per.values() for t in p))
        extractors = [run.extractor for run in ordered]
        table = [
            {"target": t, **{e: (per[e][t].mean if t in per[e] else None) for e in extractors}}
            for t in targets
        ]
        counts: dict[str, dict[str, Any]] = {}
        for run in ordered:
            found = significance_counts(run, per[run.extractor])
            if found is not None:
                counts[run.extractor] = found
        best = ordered[0]
        versus = {
            run.extractor: per_target(store, run, best, default_test(best))
            for run in ordered[1:]
            if unpaired_reason(run, best) is None
        }
        out[label] = {
            "task": best.task,
            "evaluation_id": best.evaluation_id or NO_IDENTITY,
            "metric": group[0]["metric"],
            "target_kind": best.details.get("target_kind", "target"),
            "extractors": extractors,
            "best": best.extractor,
            "targets": table,
            "n_significant": {e: c["n_significant"] for e, c in counts.items()},
            "n_significant_uncorrected": {
                e: c["n_significant_uncorrected"] for e, c in counts.items()
            },
            "significance": counts,
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
    for label in dict.fromkeys(r["group"] for r in rows):
        group = [r for r in rows if r["group"] == label]
        g0 = group[0]
        out.append(f"### {label} ({g0['metric']}, {g0['dataset']})\n")
        if g0["evaluation_id"]:
            out.append(f"evaluation `{g0['evaluation_id']}`: every row below was evaluated alike\n")
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
        out.append(f"p vs best ({g0['best']}): {p_vs_best_note(group)}")
        out.extend(f"- {n}" for n in notes)
        out.extend(f"- {r['extractor']}: {r['model']}" for r in group if r.get("model"))
        out.append("")
        if details and label in details:
            out.extend(_markdown_details(details[label]))
    return "\n".join(out)


def p_vs_best_note(group: list[dict[str, Any]]) -> str:
    """What a group's "p vs best" and "95% CI" columns are: the test its task chose (every run
    of a group shares one evaluation identity, so one ``paired_test``)."""
    if group[0].get("paired_test") == "jackknife":
        test = (
            "unit (patient) jackknife of the fold-mean difference from the stored out-of-fold"
            " predictions, variance doubled for each patient's training role"
        )
    else:
        test = "corrected resampled t-test (Nadeau & Bengio 2003) on the shared folds"
    return (
        f"{test}; Holm-adjusted over the challengers. 95% CI: the same variance for the run's"
        " own score, clipped to the metric's range."
    )


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
    for name, c in d.get("significance", {}).items():
        out.append(
            f"- {name}: {c['n_significant']} of {c['n_targets']} {plural(kind)} significant"
            f" ({c['method']}); uncorrected: {c['n_significant_uncorrected']}"
        )
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
