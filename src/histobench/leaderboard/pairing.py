"""Which stored runs may be compared, and the ranges their metrics live in.

Two runs are paired only when their evaluation identities (``benchmark/identity.py``) are
equal: same task and options, same labels, same estimator and metric, same split plan, same
evaluation code. The extractor and its features are the only thing allowed to differ, so two
precomputed-feature folders over the same patients and labels are comparable, while two runs
with another gene list, ``C`` or ``lambda_rule`` are not. A refusal names the first field that
differs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from histobench.benchmark.identity import first_difference
from histobench.benchmark.store import ResultsStore, RunRecord
from histobench.plugins.errors import ConfigError, DataError, HistobenchError

AUC_METRICS = ("auc", "roc_auc", "auroc")
# The range a metric can take: intervals are clipped to it (a bounded parameter never lies
# outside its range, so clipping keeps the coverage and only removes impossible values).
METRIC_RANGES: dict[str, tuple[float, float]] = {
    **{m: (0.0, 1.0) for m in (*AUC_METRICS, "accuracy", "balanced_accuracy", "f1", "recall")},
    **{m: (-1.0, 1.0) for m in ("pearson_r", "spearman_r", "pearson", "spearman")},
}


class ComparisonError(HistobenchError):
    """Runs that cannot be compared (missing, unpaired, wrong test for the metric)."""


def is_auc_metric(metric: str) -> bool:
    return metric.lower() in AUC_METRICS


def metric_range(metric: str) -> tuple[float, float] | None:
    return METRIC_RANGES.get(metric.lower())


def clip_to(
    low: float, high: float, bounds: tuple[float, float] | None
) -> tuple[float, float, bool]:
    """(low, high) clipped to ``bounds``, and whether anything was cut."""
    if bounds is None or not (math.isfinite(low) and math.isfinite(high)):
        return low, high, False
    lo, hi = max(low, bounds[0]), min(high, bounds[1])
    return lo, hi, (lo, hi) != (low, high)


def difference_range(metric: str) -> tuple[float, float] | None:
    """The range of A − B for a bounded metric: ±(its width)."""
    bounds = metric_range(metric)
    if bounds is None:
        return None
    width = bounds[1] - bounds[0]
    return -width, width


def parse_extractors(text: str | Sequence[str]) -> list[str]:
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text)]
    names = [n for n in names if n]
    if len(names) < 2:
        raise ConfigError(
            f"--extractors needs at least two names separated by commas, got {text!r}"
        )
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"--extractors names {', '.join(dupes)} more than once")
    return names


def latest_runs_for(
    store: ResultsStore, task: str, extractors: Sequence[str], evaluation: str | None = None
) -> list[RunRecord]:
    """The newest stored run of each extractor on ``task`` (in the order given); with
    ``evaluation``, the newest whose evaluation id starts with it."""
    latest: dict[str, RunRecord] = {}
    for run in store.runs(task):  # oldest first: later runs replace earlier ones
        if evaluation is None or (run.evaluation_id or "").startswith(evaluation):
            latest[run.extractor] = run
    missing = [e for e in extractors if e not in latest]
    if missing:
        have = ", ".join(sorted(latest)) or "none"
        within = f" with evaluation {evaluation}" if evaluation else ""
        raise ComparisonError(
            f"no stored run of {', '.join(missing)} on task {task}{within} (stored: {have});"
            f" run `bench run --extractor {missing[0]} --task {task}` first"
        )
    return [latest[e] for e in extractors]


def unpaired_reason(a: RunRecord, b: RunRecord) -> str | None:
    """Why two runs may not be compared, in words; None when they are paired."""
    for run in (a, b):
        if run.evaluation_id is None or run.evaluation is None:
            return (
                f"run {run.run_id} ({run.extractor}) was stored without an evaluation identity"
                " (by an older histobench); rerun it with `bench run`"
            )
    if a.evaluation_id == b.evaluation_id:
        return None
    diff = first_difference(a.evaluation, b.evaluation) or "evaluation id"
    return (
        f"runs {a.run_id} ({a.extractor}) and {b.run_id} ({b.extractor}) were evaluated"
        f" differently: {diff}"
    )


def check_paired(runs: Sequence[RunRecord]) -> None:
    """Refuse runs whose evaluation identities differ, naming the first field that does."""
    ref = runs[0]
    for other in runs[1:]:
        reason = unpaired_reason(ref, other)
        if reason:
            raise ComparisonError(
                f"cannot compare unpaired runs: {reason}; rerun one with the other's task"
                " options, labels and --repeats/--folds/--seed (or pick runs with --evaluation)"
            )


def plan_sizes(store: ResultsStore, run: RunRecord) -> tuple[float, float]:
    plan = store.load_plan(run.plan_id)
    if plan is None:
        raise DataError(f"split plan {run.plan_id} of run {run.run_id} is missing from the store")
    return plan.mean_train_test_sizes()


NO_IDENTITY = "none"


def evaluation_groups(runs: Sequence[RunRecord]) -> dict[tuple[str, str], list[RunRecord]]:
    """Runs grouped by (task, evaluation id), the newest run of each extractor per group (runs
    given oldest first). Runs stored without an identity share the group ``NO_IDENTITY``;
    they are shown but never compared."""
    groups: dict[tuple[str, str], dict[str, RunRecord]] = {}
    for run in runs:
        key = (run.task, run.evaluation_id or NO_IDENTITY)
        groups.setdefault(key, {})[run.extractor] = run
    return {key: list(by_extractor.values()) for key, by_extractor in groups.items()}


def group_label(task: str, runs: Sequence[RunRecord], others: Sequence[RunRecord]) -> str:
    """A readable name for one evaluation group of a task: the task alone when it is the only
    group, else the task, the evaluation id and what sets it apart from the first group."""
    ref = runs[0]
    if not others:
        return task
    if ref.evaluation_id is None:
        return f"{task} · stored without an evaluation identity"
    first = others[0]
    diff = None
    if first.evaluation is not None and ref.evaluation is not None:
        diff = first_difference(ref.evaluation, first.evaluation)
    label = f"{task} · evaluation {ref.evaluation_id[:8]}"
    if diff is None:
        return label
    field, _, values = diff.partition(":")
    return f"{label} ({field} = {values.split(' vs ')[0].strip()})"
