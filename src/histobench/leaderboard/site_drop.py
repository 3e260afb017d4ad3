"""How much of an extractor's score is site signature: patient- vs site-grouped runs.

A TCGA slide carries its tissue-source site's staining and scanning; a model can score by
recognising the site instead of the biology when a site's patients fall on both sides of a fold
(Howard et al., Nature Communications 2021). ``bench run --group-by site`` keeps every site in
one fold; the drop from the patient-grouped score is the part that did not survive. The two
runs use different folds, so the drop is a difference of means, not a paired test.
"""

from __future__ import annotations

from typing import Any

from histobench.benchmark.identity import first_difference
from histobench.benchmark.store import ResultsStore, RunRecord


def grouped_by(run: RunRecord) -> str:
    """What kept units together in a run's plan (configs before ``group_by`` had a bool)."""
    cv = run.config.get("cv", {})
    if "group_by" in cv:
        return str(cv["group_by"])
    return "patient" if cv.get("group_by_patient", True) else "none"


def site_drop(store: ResultsStore, task: str, extractor: str) -> dict[str, Any] | None:
    """The newest patient- and site-grouped runs of ``extractor`` on ``task`` and the drop
    between them; None unless both kinds exist. Runs that differ in anything but the plan
    get a note naming the difference instead of a drop."""
    newest: dict[str, RunRecord] = {}
    for run in store.runs(task, extractor):
        newest[grouped_by(run)] = run
    if "patient" not in newest or "site" not in newest:
        return None
    patient, site = newest["patient"], newest["site"]
    out: dict[str, Any] = {
        "task": task,
        "extractor": extractor,
        "metric": patient.metric,
        "patient_run": patient.run_id,
        "site_run": site.run_id,
        "patient_grouped": patient.mean,
        "site_grouped": site.mean,
    }
    difference = _unlike(patient, site)
    if difference:
        out["note"] = f"not comparable: {difference}"
        return out
    sign = 1.0 if patient.greater_is_better else -1.0
    out["drop"] = sign * (patient.mean - site.mean)
    out["relative_drop"] = out["drop"] / abs(patient.mean) if patient.mean else None
    return out


def _unlike(a: RunRecord, b: RunRecord) -> str | None:
    """The first difference between two runs apart from their split plan."""
    if a.dataset_fingerprint != b.dataset_fingerprint:
        return "different data sets"
    if a.evaluation is not None and b.evaluation is not None:
        bare_a = {k: v for k, v in a.evaluation.items() if k != "plan"}
        bare_b = {k: v for k, v in b.evaluation.items() if k != "plan"}
        return first_difference(bare_a, bare_b)
    if a.config.get("task_options") != b.config.get("task_options"):
        return "different task options"
    return None


def site_drops(store: ResultsStore, runs: list[RunRecord]) -> list[dict[str, Any]]:
    """``site_drop`` for every (task, extractor) of ``runs`` that has both kinds of run."""
    pairs = dict.fromkeys((r.task, r.extractor) for r in runs if grouped_by(r) == "site")
    found = (site_drop(store, task, extractor) for task, extractor in pairs)
    return [d for d in found if d is not None]


def site_drop_markdown(drops: list[dict[str, Any]]) -> str:
    if not drops:
        return ""
    lines = [
        "### Site signature: patient- vs site-grouped folds\n",
        "| task | extractor | metric | patient-grouped | site-grouped | drop |",
        "| --- | --- | --- | ---: | ---: | ---: |",
    ]
    for d in drops:
        drop = f"{d['drop']:.4f}" if "drop" in d else d["note"]
        lines.append(
            f"| {d['task']} | {d['extractor']} | {d['metric']} | {d['patient_grouped']:.4f} |"
            f" {d['site_grouped']:.4f} | {drop} |"
        )
    lines.append(
        "\nDrop: the score lost when each TCGA tissue-source site stays in one fold (a "
        "difference of means over different folds, not a paired test).\n"
    )
    return "\n".join(lines)
