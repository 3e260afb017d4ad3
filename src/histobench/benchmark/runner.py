"""One benchmark run: config → plugins → data set → features → split plan → scores → store."""

from __future__ import annotations

import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from histobench.benchmark import home
from histobench.benchmark.cache import FeatureCache
from histobench.benchmark.config import RunConfig, validate_options
from histobench.benchmark.environment import environment, feature_code_version, resolve_device
from histobench.benchmark.identity import evaluation_id, evaluation_identity
from histobench.benchmark.plans import plan_groups, read_plan_csv, unit_sites
from histobench.benchmark.progress import stderr_console
from histobench.benchmark.splits import SplitPlan, make_plan, plan_recipe
from histobench.benchmark.store import ResultsStore
from histobench.plugins.errors import ConfigError, DataError, PluginError
from histobench.plugins.manager import Plugins, get_plugins
from histobench.plugins.specs import (
    Dataset,
    DatasetSpec,
    ExtractionResult,
    Extractor,
    Item,
    PluginOptions,
    Runtime,
    SkippedItem,
    Task,
    TaskSpec,
)


@dataclass
class Resolved:
    """Every plugin a run needs, validated before any heavy work starts."""

    task_spec: TaskSpec
    task_options: PluginOptions
    dataset_spec: DatasetSpec
    dataset_source: str
    dataset_options: PluginOptions
    extractor_name: str | None
    extractor_options: PluginOptions | None


def resolve(config: RunConfig, source: str, plugins: Plugins | None = None) -> Resolved:
    plugins = plugins or get_plugins()
    task_spec = plugins.tasks.get(config.task).spec
    task_options = validate_options(
        task_spec.options_model, config.task_options, source, "task_options"
    )
    dataset_spec, dataset_source = resolve_dataset(config.dataset, task_spec, plugins)
    if "patients_map" in config.dataset_options and (
        "patients_map" not in dataset_spec.options_model.model_fields
    ):
        raise ConfigError(
            f"--patients: the {dataset_spec.name} data set takes no patients map (its "
            "options have no 'patients_map'; such data sets take patients from their own files)"
        )
    dataset_options = validate_options(
        dataset_spec.options_model, config.dataset_options, source, "dataset_options"
    )
    if config.extractor is None:
        return Resolved(
            task_spec, task_options, dataset_spec, dataset_source, dataset_options, None, None
        )
    extractor_spec = plugins.extractors.get(config.extractor).spec
    values = dict(config.extractor_options)
    if extractor_spec.prefix and extractor_spec.suffix_field:
        if ":" not in config.extractor:
            raise PluginError(
                f"extractor '{config.extractor}' needs a model name: "
                f"use {config.extractor}:<model-name>"
            )
        values[extractor_spec.suffix_field] = config.extractor.split(":", 1)[1]
    extractor_options = validate_options(
        extractor_spec.options_model, values, source, "extractor_options"
    )
    return Resolved(
        task_spec,
        task_options,
        dataset_spec,
        dataset_source,
        dataset_options,
        config.extractor,
        extractor_options,
    )


def resolve_dataset(
    dataset: str | None, task_spec: TaskSpec | None, plugins: Plugins
) -> tuple[DatasetSpec, str]:
    """``--dataset`` as 'demo', a registered data set name, a path, or a name under
    HISTOBENCH_HOME/data; without it, the task's standard data set under HISTOBENCH_HOME/data.
    Without a task (``bench extract``) only names and paths resolve."""
    if task_spec is None and dataset in (None, "demo"):
        raise DataError(
            f"--dataset {dataset or ''}: without a task, give a path or a data set name "
            "(see `bench list datasets`)"
        )
    if dataset == "demo" and task_spec is not None:
        if not task_spec.demo_dataset:
            raise DataError(f"task '{task_spec.name}' has no demo data set")
        return plugins.datasets.get(task_spec.demo_dataset).spec, ""
    if dataset in plugins.datasets.names():
        return plugins.datasets.get(dataset).spec, ""
    if dataset is None and task_spec is not None:
        if not task_spec.standard_dataset:
            raise DataError(f"task '{task_spec.name}' needs --dataset PATH")
        path = home.data_dir() / task_spec.standard_dataset
        if not path.exists():
            raise DataError(
                f"no --dataset given and the standard data set {path} is absent: "
                f"{task_spec.dataset_hint}; or try --dataset demo"
            )
    else:
        assert dataset is not None  # refused above when there is no task
        path = Path(dataset).expanduser()
        if not path.exists() and (home.data_dir() / dataset).exists():
            path = home.data_dir() / dataset
        if not path.exists():
            raise DataError(
                f"{path}: data set not found (a path, a name under {home.data_dir()}, or 'demo')"
            )
    for entry in plugins.datasets.entries():
        detect = entry.spec.detect
        if detect is not None and detect(path):
            return entry.spec, str(path)
    raise DataError(
        f"{path}: not a recognised data set (expected e.g. <root>/<CLASS>/<tile>.tif class "
        "folders; is the folder empty?)"
    )


def extract_features(
    extractor: Extractor | None, dataset: Dataset, runtime: Runtime
) -> ExtractionResult:
    """Items → features: the data set's own embedder (slides, HDF5) or the tile pipeline."""
    if dataset.embed is not None:
        result: ExtractionResult = dataset.embed(extractor, dataset.items, runtime)
        return result
    if extractor is None:
        raise PluginError("this data set needs an extractor: pass --extractor NAME")
    if dataset.kind != "tiles":
        raise DataError(f"data sets of kind '{dataset.kind}' need their own embedder")
    # The tile pipeline imports torch: only runs that extract tiles pay for it.
    from histobench.benchmark.extraction import extract_tiles

    cache = FeatureCache(home.features_dir(), extractor.feature_identity(), feature_code_version())
    if cache.superseded:
        stderr_console.print(
            f"{extractor.name}: features cached by other histobench code "
            f"({', '.join(cache.superseded)}) are not reused; computing them for "
            f"{feature_code_version()}"
        )
    return extract_tiles(extractor, dataset.items, cache, runtime, description=dataset.name)


def pooled_features(
    features: np.ndarray, members: list[np.ndarray], tile_counts: np.ndarray | None = None
) -> np.ndarray:
    """One row per unit: the mean of all tiles of its items.

    A row of ``features`` may already average several tiles (a slide): weighting rows by their
    tile counts makes a patient's vector the mean over all its slides' tiles.
    """
    if all(len(m) == 1 for m in members):
        return features[np.concatenate(members)] if members else features[:0]
    if tile_counts is None:
        return np.stack([features[m].mean(axis=0) for m in members])
    return np.stack([np.average(features[m], axis=0, weights=tile_counts[m]) for m in members])


def get_or_make_plan(
    store: ResultsStore,
    task: Task,
    units: Any,
    config: RunConfig,
    dataset: Dataset,
    items: Sequence[Item] = (),
) -> SplitPlan:
    """The run's split plan: read from ``cv.plan``, else the stored plan drawn from the same
    inputs, else a new draw grouped by ``cv.group_by``."""
    sites = unit_sites(units, items) if items else [None] * len(units.ids)
    if config.cv.plan is not None:
        imported = read_plan_csv(config.cv.plan, units.ids, units.groups, sites, config.cv.group_by)
        # The same folds stored before (e.g. the plan this file was exported from) keep their
        # record; either way the id is the folds', so runs on both are paired.
        stored = store.load_plan(imported.plan_id)
        plan = stored if stored is not None else imported
        store.save_plan(plan, task.name, dataset.fingerprint)
        # The run's record states the shape it was evaluated on: the file's, not the defaults.
        config.cv.repeats, config.cv.folds = plan.repeats, plan.folds
        return plan
    groups = plan_groups(config.cv.group_by, units, sites)
    recipe = plan_recipe(
        units.ids, units.strata, groups, config.cv.repeats, config.cv.folds, config.seed
    )
    stored = store.plan_for_recipe(recipe)
    if stored is None:
        stored = make_plan(
            units.ids,
            units.strata,
            groups,
            config.cv.repeats,
            config.cv.folds,
            config.seed,
            class_names=getattr(task, "classes", None),
            patients=units.groups,
            sites=sites if any(sites) else None,
            grouped_by=config.cv.group_by,
        )
        store.save_plan(stored, task.name, dataset.fingerprint)
    return stored


def check_skipped_fraction(
    skipped: list[SkippedItem], total: int, config: RunConfig, dataset: Dataset
) -> None:
    """A few bad items are skipped and reported; too many mean a broken data set, so stop."""
    if total == 0 or len(skipped) / total <= config.max_skipped_fraction:
        return
    first = skipped[0]
    reason = (first.reason.splitlines() or [""])[0][:160]
    raise DataError(
        f"{dataset.root or dataset.name}: {len(skipped)} of {total} items skipped "
        f"({len(skipped) / total:.1%}), more than max_skipped_fraction="
        f"{config.max_skipped_fraction:g} (first: {first.item_id}: {reason}); "
        "fix or remove them, or raise max_skipped_fraction in the run config"
    )


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)


def run_benchmark(config: RunConfig, source: str = "command line") -> dict[str, Any]:
    """Run one (extractor, task, data set) benchmark and store it; return the JSON record."""
    started = time.perf_counter()
    plugins = get_plugins()
    resolved = resolve(config, source, plugins)
    # Without an extractor (precomputed features) nothing runs on a device: "auto" is the CPU,
    # and torch is not imported to look for a GPU.
    no_model = config.extractor is None and config.device == "auto"
    device = "cpu" if no_model else resolve_device(config.device)
    runtime = Runtime(device, config.seed, config.batch_size, config.num_workers)
    task = resolved.task_spec.factory(resolved.task_options)
    dataset = resolved.dataset_spec.factory(resolved.dataset_source, resolved.dataset_options)
    extractor: Extractor | None = None
    if config.extractor is not None and resolved.extractor_options is not None:
        spec = plugins.extractors.get(config.extractor).spec
        extractor = spec.factory(resolved.extractor_options, runtime)
    label = config.extractor or dataset.precomputed_label
    if label is None:
        raise PluginError("no extractor given: pass --extractor NAME (see `bench list extractors`)")

    task.check(dataset)  # bad labels must not cost a slide extraction first
    extraction = extract_features(extractor, dataset, runtime)
    skipped = list(dataset.skipped) + extraction.skipped
    if not extraction.ok:
        raise DataError(
            f"{dataset.root or dataset.name}: no item could be read ({len(skipped)} skipped)"
        )
    check_skipped_fraction(skipped, len(dataset.items) + len(dataset.skipped), config, dataset)
    items = [dataset.items[i] for i in extraction.ok]
    units = task.units(dataset, items)
    with ResultsStore(home.results_db()) as store:
        plan = get_or_make_plan(store, task, units, config, dataset, items)
        features = pooled_features(extraction.features, units.members, extraction.tile_counts)
        stderr_console.print(
            f"[bold]{task.name}[/]: {len(units.ids)} units, plan {plan.plan_id} "
            f"({plan.repeats}×{plan.folds})"
        )
        result = task.evaluate(features, units, plan)
        # What decides these scores apart from the features: runs are paired only when equal.
        evaluation = evaluation_identity(task, dataset, plan, result)
        run_id = new_run_id()
        env = environment(
            extractor.device if extractor else "cpu",
            extractor.precision if extractor else "precomputed",
            config.seed,
        )
        config_record = config.model_dump(mode="json")
        config_record["resolved"] = {
            "dataset_plugin": resolved.dataset_spec.name,
            "dataset_source": resolved.dataset_source,
            "dataset_options": resolved.dataset_options.model_dump(mode="json"),
            "extractor_options": (
                resolved.extractor_options.model_dump(mode="json")
                if resolved.extractor_options
                else None
            ),
            "task_options": resolved.task_options.model_dump(mode="json"),
            "extractor_identity": extractor.feature_identity() if extractor else None,
        }
        result.details.setdefault("target_kind", task.target_kind)
        result.details["extraction"] = {
            **extraction.details,
            "computed": extraction.computed,
            "cached": extraction.cached,
            "tiles_per_second": round(extraction.tiles_per_second, 2),
            "corrupt_cache_files_recomputed": extraction.corrupt_cache_files,
        }
        store.save_run(
            run_id=run_id,
            created=datetime.now(UTC).isoformat(timespec="seconds"),
            extractor=label,
            task=task.name,
            dataset=dataset.name,
            dataset_fingerprint=dataset.fingerprint,
            plan=plan,
            greater_is_better=task.greater_is_better,
            result=result,
            config=config_record,
            env=env,
            code_version=env["code_version"],
            skipped=skipped,
            evaluation=evaluation,
        )
    scores = result.repeat_scores
    return {
        "run_id": run_id,
        "extractor": label,
        "task": task.name,
        "dataset": dataset.name,
        "metric": result.metric,
        "mean": float(np.nanmean(scores)),
        "std": float(np.nanstd(scores, ddof=1)) if len(scores) > 1 else 0.0,
        "repeats": plan.repeats,
        "folds": plan.folds,
        "plan_id": plan.plan_id,
        "evaluation_id": evaluation_id(evaluation),
        "evaluation": evaluation,
        "n_units": len(units.ids),
        "scores": [float(s) for s in scores],
        "fold_scores": result.fold_scores.tolist(),
        "per_target": {
            name: {
                "metric": t.metric,
                "mean": t.mean,
                "std": float(np.nanstd(t.repeat_scores, ddof=1))
                if len(t.repeat_scores) > 1
                else 0.0,
                "scores": [float(s) for s in t.repeat_scores],
                **({"extra": t.extra} if t.extra else {}),
            }
            for name, t in result.per_target.items()
        },
        "skipped": [{"item_id": s.item_id, "reason": s.reason} for s in skipped],
        "details": result.details,
        "config": config_record,
        "env": env,
        "seconds": round(time.perf_counter() - started, 2),
    }
