"""The evaluation identity of a run: everything apart from the extractor that decides its scores.

Two runs are compared only when their identities are equal, so a difference between them can
only come from the features. The record holds, in this order (the order in which a refusal
names the first difference):

- ``task``, ``options`` (every option, defaults included, file options by content),
  ``estimator`` (the task's ``describe()``) and ``metric``: from ``Task.evaluation_identity``;
- ``labels``: the resolved target list and a digest of the label values the scores were
  computed against (the ``y_true`` of every scored target, in unit order);
- ``inputs``: the items the extractor read (tiles, slides) by content; features that were
  precomputed are the thing being compared, so they are left out;
- ``plan``: the split plan (its id covers units, strata, groups, repeats, folds and seed);
- ``code``: a digest of the modules that compute the scores and the statistics.

What is left out on purpose: the extractor and everything that only shapes features, and
options that cannot change a score (``Task.score_neutral_options``, e.g. ``n_jobs``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import inspect
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from histobench.plugins.specs import Dataset, SplitPlan, Task, TaskResult, digest

# The comparison code reads these scores; a change to it is a change of evaluation.
STATISTICS_MODULES = ("histobench.statistics",)
IDENTITY_VERSION = 1


def _module_files(name: str) -> list[Path]:
    """The source files of a module or of every module of a package (sorted)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    if spec is None or spec.origin is None:
        raise RuntimeError(f"evaluation code module {name} not found")
    if spec.submodule_search_locations:
        return sorted(f for d in spec.submodule_search_locations for f in Path(d).rglob("*.py"))
    return [Path(spec.origin)]


def code_identity(task: Task) -> dict[str, Any]:
    """Digest of the task's evaluation modules plus the statistics package."""
    modules = [*task.evaluation_modules(), *STATISTICS_MODULES]
    h = hashlib.sha256()
    for name in modules:
        try:
            files = _module_files(name)
        except RuntimeError:
            # A task defined in a script or notebook: its class source stands for its module.
            h.update(name.encode())
            h.update(inspect.getsource(type(task)).encode())
            continue
        for f in files:
            h.update(f"{name}:{f.name}".encode())
            h.update(f.read_bytes())
    return {"modules": modules, "digest": h.hexdigest()[:16]}


def label_identity(result: TaskResult) -> dict[str, Any]:
    """The targets scored and the label values they were scored against (NaN = unknown)."""
    h = hashlib.sha256()
    for pred in result.predictions:
        y = np.ascontiguousarray(np.asarray(pred.y_true, dtype=np.float64))
        h.update(pred.target.encode() + b"\0")
        h.update(np.where(np.isnan(y), np.nan, y).tobytes())  # one NaN bit pattern
    return {
        "targets": list(result.per_target),
        "values": h.hexdigest()[:16] if result.predictions else "not stored by the task",
    }


def input_identity(dataset: Dataset) -> dict[str, Any]:
    if dataset.precomputed_label is not None:
        return {"kind": dataset.kind, "items": "precomputed features (compared, not fixed)"}
    return {"kind": dataset.kind, "items": dataset.fingerprint}


def plan_identity_record(plan: SplitPlan) -> dict[str, Any]:
    # The plan id digests the folds themselves, so it is the whole identity of the split: the
    # algorithm that drew it is left out, so a plan exported and imported elsewhere (recorded
    # as "imported") still pairs with runs on the original.
    return {"plan_id": plan.plan_id, "repeats": plan.repeats, "folds": plan.folds}


def evaluation_identity(
    task: Task, dataset: Dataset, plan: SplitPlan, result: TaskResult
) -> dict[str, Any]:
    """The readable identity record of a run (see the module docstring for its fields)."""
    return {
        **task.evaluation_identity(dataset),
        "labels": label_identity(result),
        "inputs": input_identity(dataset),
        "plan": plan_identity_record(plan),
        "code": code_identity(task),
        "version": IDENTITY_VERSION,
    }


def evaluation_id(record: Mapping[str, Any]) -> str:
    return digest(record, length=16)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def first_difference(a: Any, b: Any, path: str = "") -> str | None:
    """The first field (in record order) where two identity records differ, in words:
    ``options.lambda_rule: 'min' vs '1se'``; None when they are equal."""
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        for key in [*a, *(k for k in b if k not in a)]:
            where = f"{path}.{key}" if path else str(key)
            if key not in a or key not in b:
                return f"{where}: {'absent' if key not in a else _short(a[key])} vs" + (
                    f" {'absent' if key not in b else _short(b[key])}"
                )
            found = first_difference(a[key], b[key], where)
            if found:
                return found
        return None
    if _is_list(a) and _is_list(b) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found = first_difference(x, y, f"{path}[{i}]")
            if found:
                return found
        return None
    return None if a == b else f"{path or 'record'}: {_short(a)} vs {_short(b)}"
