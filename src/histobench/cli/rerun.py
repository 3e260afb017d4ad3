"""``bench rerun RUN_ID``: repeat a stored run from its recorded config and say what differs.

Scores, the evaluation (plan, data set, metric), every config field and every environment
field are compared one by one; where scores differ, the environment and config differences
that can explain it are named (other package versions, device, precision, histobench code).
Exit 0 when the repeat is identical, 3 when anything differs (errors keep their own codes).
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

EXIT_DIFFERENT = 3
# Environment fields whose change can move scores, and how to say so.
_CAUSES = {
    "env.device": "other device",
    "env.device_name": "other device",
    "env.precision": "other precision",
    "env.code_version": "other histobench code",
    "env.python": "other Python",
}


@dataclass
class Difference:
    field: str
    old: Any
    new: Any
    why: str = ""


def add_rerun_parser(sub: Any) -> None:
    p = sub.add_parser(
        "rerun",
        help="repeat a stored run from its recorded config and report any difference",
        description="Repeat a stored run from its recorded config; compare scores, config and "
        "environment field by field. Exit 0 when identical, 3 when anything differs.",
    )
    p.add_argument("run_id", help="a run id (see `bench leaderboard --format json`)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_rerun)


def recorded_config(config: dict[str, Any], run_id: str) -> Any:
    """The stored config as a RunConfig; the data set as it was resolved (an absolute path)."""
    from pydantic import ValidationError

    from histobench.benchmark.config import RunConfig, format_validation_error
    from histobench.plugins.errors import ConfigError

    data = {k: v for k, v in config.items() if k != "resolved"}
    source = (config.get("resolved") or {}).get("dataset_source")
    if source:
        data["dataset"] = source
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:  # stored by a histobench whose config had other fields
        raise ConfigError(format_validation_error(exc, f"run {run_id}: recorded config")) from exc


def cmd_rerun(args: argparse.Namespace) -> int:
    from histobench.benchmark import home
    from histobench.benchmark.runner import run_benchmark
    from histobench.benchmark.store import ResultsStore
    from histobench.plugins.errors import DataError

    with ResultsStore(home.results_db()) as store:
        old = store.get_run(args.run_id)
        if old is None:
            raise DataError(f"run {args.run_id}: not in {home.results_db()}")
        old_targets = store.target_results(args.run_id)
    record = run_benchmark(recorded_config(old.config, args.run_id), f"run {args.run_id}")
    with ResultsStore(home.results_db()) as store:
        new = store.get_run(record["run_id"])
        new_targets = store.target_results(record["run_id"])
    assert new is not None  # just stored by run_benchmark
    differences = compare_runs(old, new, old_targets, new_targets)
    cached = record.get("details", {}).get("extraction", {}).get("cached")
    if args.json:
        print(json.dumps(_report(old.run_id, new.run_id, differences, cached), default=str))
    else:
        _print_report(old.run_id, new.run_id, differences, cached)
    return EXIT_DIFFERENT if differences else 0


def _report(
    old_id: str, new_id: str, differences: list[Difference], cached: int | None
) -> dict[str, Any]:
    return {
        "run_id": old_id,
        "rerun_id": new_id,
        "identical": not differences,
        "features_from_cache": cached,
        "differences": [asdict(d) for d in differences],
    }


def _print_report(
    old_id: str, new_id: str, differences: list[Difference], cached: int | None
) -> None:
    note = f"; {cached} items' features read from the feature cache" if cached else ""
    if not differences:
        print(f"run {old_id} repeated as {new_id}: identical scores, config and env{note}")
        return
    print(f"run {old_id} repeated as {new_id}: {len(differences)} difference(s){note}")
    for d in differences:
        why = f"  ({d.why})" if d.why else ""
        print(f"  {d.field}: {_show(d.old)} -> {_show(d.new)}{why}")


def _show(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 80 else text[:77] + "..."


# -- comparing ----------------------------------------------------------------------------------


def flatten(prefix: str, value: Any) -> dict[str, Any]:
    """Nested dicts as dotted paths, so a difference names its exact field."""
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(f"{prefix}.{key}", item))
        return out
    return {prefix: value}


def _same_array(a: Any, b: Any) -> bool:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and bool(np.array_equal(a, b, equal_nan=True))


def _array_difference(name: str, a: Any, b: Any) -> Difference:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        return Difference(name, f"shape {a.shape}", f"shape {b.shape}")
    gap = np.nanmax(np.abs(a - b)) if np.isfinite(a - b).any() else math.nan
    changed = int((~np.isclose(a, b, rtol=0, atol=0, equal_nan=True)).sum())
    return Difference(name, f"{changed} of {a.size} values differ", f"max |diff| {gap:.3g}")


def compare_runs(old: Any, new: Any, old_targets: dict, new_targets: dict) -> list[Difference]:
    """Field-by-field differences between two stored runs, scores first, each with a cause."""
    scores: list[Difference] = []
    for name in ("fold_scores", "repeat_scores"):
        if not _same_array(getattr(old, name), getattr(new, name)):
            scores.append(
                _array_difference(f"scores.{name}", getattr(old, name), getattr(new, name))
            )
    for name in ("mean", "std"):
        if not _same_array(getattr(old, name), getattr(new, name)):
            scores.append(Difference(f"scores.{name}", getattr(old, name), getattr(new, name)))
    for target in sorted(set(old_targets) | set(new_targets)):
        a, b = old_targets.get(target), new_targets.get(target)
        if a is None or b is None or not _same_array(a.repeat_scores, b.repeat_scores):
            field = f"per_target.{target}.repeat_scores"
            if a is None or b is None:
                scores.append(Difference(field, a is not None, b is not None))
            else:
                scores.append(_array_difference(field, a.repeat_scores, b.repeat_scores))
    setup = [
        Difference(f"evaluation.{name}", getattr(old, name), getattr(new, name))
        for name in ("plan_id", "dataset_fingerprint", "metric", "evaluation_id")
        if getattr(old, name, None) != getattr(new, name, None)
    ]
    setup += _dict_differences(flatten("config", old.config), flatten("config", new.config))
    setup += _dict_differences(flatten("env", old.env), flatten("env", new.env))
    causes = [_cause(d) for d in setup]
    why = (
        "; ".join(dict.fromkeys(c for c in causes if c)) or "same config and env: not reproducible"
    )
    for d in scores:
        d.why = why
    for d, cause in zip(setup, causes, strict=True):
        d.why = cause
    return scores + setup


def _dict_differences(old: dict[str, Any], new: dict[str, Any]) -> list[Difference]:
    return [
        Difference(key, old.get(key), new.get(key))
        for key in sorted(set(old) | set(new))
        if old.get(key) != new.get(key)
    ]


def _cause(d: Difference) -> str:
    if d.field.startswith("env.packages."):
        return f"other versions ({d.field.removeprefix('env.packages.')})"
    if d.field in _CAUSES:
        return _CAUSES[d.field]
    if d.field.startswith("config."):
        return f"other config ({d.field.removeprefix('config.')})"
    if d.field.startswith("evaluation."):
        return f"other evaluation ({d.field.removeprefix('evaluation.')})"
    return ""
