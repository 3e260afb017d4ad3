"""The extraction engine for items made of many tiles (slides): one HDF5 file and one mean
row per item, resumable at item granularity.

The CPU work of an item (open, plan, read, normalise; given by the data set's ``TileReader``)
runs on an executor (``histobench.benchmark.executors``) in chunks of tiles; the model runs
on fixed-size batches as chunks arrive, in this process for one device or in one process per
device (``histobench.benchmark.devices``), so reading the next tiles overlaps embedding the
previous ones (``histobench.benchmark.streaming``).

Each item's features go to its ``ItemJob.out_path`` (CLAM/TRIDENT layout, written
atomically). A rerun skips items whose file exists and carries the same key; a killed run
therefore resumes at item granularity, and the next run deletes the temporary file it was
writing (``h5io.remove_stale_temps``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from histobench.benchmark.devices import (
    DeviceEmbedder,
    auto_cpu_models,
    default_reader_workers,
    make_embedder,
    model_threads,
    resolve_devices,
    set_torch_threads,
)
from histobench.benchmark.extraction import default_batch_size
from histobench.benchmark.h5io import (
    FeatureDtype,
    read_slide_features,
    remove_stale_temps,
    write_slide_features,
)
from histobench.benchmark.streaming import Embedder, ItemJob, ItemState, TileReader, stream_items
from histobench.plugins.errors import DataError
from histobench.plugins.specs import ExtractionResult, Extractor, Runtime, SkippedItem

# Default executor spec when the caller names none (e.g. "inline" in small test runs).
EXECUTOR_ENV = "HISTOBENCH_EXECUTOR"


@dataclass
class EngineSettings:
    """How the engine runs; none of it changes the features."""

    executor: Any = None  # a spec string or a TaskExecutor (left open); None = $EXECUTOR_ENV
    workers: int | None = None  # sizes an executor made here; None = runtime, else default
    devices: str | Sequence[str] | DeviceEmbedder | None = None
    dtype: FeatureDtype = "float32"
    chunk_tiles: int = 32
    unit: str = "item"  # how outcomes name an item: "<unit>_id", "<unit>", "per_<unit>"
    key_attr: str = "item_key"  # the file attribute holding ``ItemJob.key``


@dataclass
class _Tally:
    """What the engine has so far: rows by item position and per-item outcomes."""

    rows: dict[int, np.ndarray] = field(default_factory=dict)
    counts: dict[int, int] = field(default_factory=dict)
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[SkippedItem] = field(default_factory=list)
    computed: int = 0
    cached_tiles: int = 0
    tiles_embedded: int = 0
    model_seconds: float = 0.0


def _outcome(job: ItemJob, unit: str, status: str, **extra: Any) -> dict[str, Any]:
    return {
        "index": job.pos,
        f"{unit}_id": job.item.item_id,
        unit: str(job.item.path),
        "status": status,
        "h5": str(job.out_path) if status != "failed" else None,
        **extra,
    }


def _mean_row(features: np.ndarray) -> np.ndarray:
    return features.astype(np.float64).mean(axis=0).astype(np.float32)


def _load_done(job: ItemJob, key_attr: str) -> tuple[np.ndarray, int] | None:
    """(mean row, tile count) of a finished file made with the same key, else None."""
    if not job.out_path.is_file():
        return None
    try:
        features, _, attrs = read_slide_features(job.out_path)
    except DataError:
        return None  # corrupt: recompute and overwrite
    if attrs.get(key_attr) != job.key or len(features) == 0:
        return None
    return _mean_row(features), len(features)


def _reuse_done(jobs: Sequence[ItemJob], tally: _Tally, settings: EngineSettings) -> list[ItemJob]:
    """Take finished files into ``tally``; return the jobs still to compute."""
    todo = []
    unit = settings.unit
    for job in jobs:
        done = _load_done(job, settings.key_attr)
        if done is None:
            todo.append(job)
            continue
        tally.rows[job.pos], tally.counts[job.pos] = done
        tally.cached_tiles += done[1]
        tally.outcomes.append(_outcome(job, unit, "cached", tiles=done[1]))
    return todo


def _finish(
    state: ItemState, settings: EngineSettings, embedder: Embedder, reader: TileReader
) -> tuple[np.ndarray, int]:
    """Write the item's HDF5 file; return its mean row computed from the stored values."""
    assert state.plan is not None
    dtype = settings.dtype
    features = np.concatenate([embedder.result(p) for p in state.features]).astype(dtype)
    attrs = {
        **state.job.attrs,
        settings.key_attr: state.job.key,
        **state.plan.attrs,
        "n_tiles": len(features),
        "n_planned_tiles": len(state.plan.coords),
        reader.flagged_label: state.flagged,
    }
    write_slide_features(
        state.job.out_path, features, np.concatenate(state.coords), attrs, dtype=dtype
    )
    # The mean of what was stored, so a later cached read gives the same row bit for bit.
    return _mean_row(features), len(features)


def _record(
    state: ItemState,
    tally: _Tally,
    settings: EngineSettings,
    embedder: Embedder,
    reader: TileReader,
) -> None:
    job, unit = state.job, settings.unit
    if state.failed is not None:
        tally.skipped.append(SkippedItem(job.item.item_id, state.failed))
        tally.outcomes.append(_outcome(job, unit, "failed", reason=state.failed))
        return
    elapsed = time.perf_counter() - state.started
    row, n = _finish(state, settings, embedder, reader)
    tally.rows[job.pos], tally.counts[job.pos] = row, n
    tally.computed += 1
    assert state.plan is not None
    tally.outcomes.append(
        _outcome(
            job,
            unit,
            "computed",
            tiles=n,
            **{reader.flagged_label: state.flagged},
            seconds=round(elapsed, 3),
            **state.plan.outcome,
        )
    )


def _compute(
    extractor: Extractor,
    todo: Sequence[ItemJob],
    reader: TileReader,
    settings: EngineSettings,
    plan: _DevicePlan,
    tally: _Tally,
) -> dict[str, Any]:
    """Run the jobs on an executor and the model; returns the executor's description."""
    from histobench.benchmark.executors import TaskExecutor, make_executor
    from histobench.benchmark.progress import make_progress, rate_text

    executor = settings.executor
    if executor is None:
        executor = os.environ.get(EXECUTOR_ENV) or "local"
    owned = not isinstance(executor, TaskExecutor)
    pool = make_executor(executor, plan.workers) if owned else executor
    if plan.given is None and settings.devices in (None, "auto"):
        plan.devices = auto_cpu_models(pool, plan.devices)
    threads = model_threads(pool, plan.devices) if len(plan.devices) == 1 else None
    owned_embedder: Embedder | None = None  # closed here; a given one stays open
    try:
        if plan.given is None:
            owned_embedder = make_embedder(
                extractor, plan.devices, plan.batch_size, int(pool.workers or 0)
            )
        embedder = plan.given or owned_embedder
        assert embedder is not None
        with make_progress("tiles") as view:
            bar = view.add_task(f"{settings.unit}s ({extractor.name})", total=len(todo), rate="")
            t0 = time.perf_counter()
            for state in stream_items(pool, todo, reader, embedder, settings.chunk_tiles):
                _record(state, tally, settings, embedder, reader)
                rate = rate_text(embedder.tiles, time.perf_counter() - t0, "tiles")
                view.update(bar, advance=1, rate=rate)
        tally.tiles_embedded, tally.model_seconds = embedder.tiles, embedder.seconds
        return pool.describe()
    finally:
        if owned_embedder is not None:
            owned_embedder.close()
        if threads is not None:
            set_torch_threads(threads)
        if owned:
            pool.close()


@dataclass
class _DevicePlan:
    devices: list[str]
    given: DeviceEmbedder | None  # a started embedder the caller owns
    batch_size: int
    workers: int


def _device_plan(extractor: Extractor, runtime: Runtime, settings: EngineSettings) -> _DevicePlan:
    given: DeviceEmbedder | None = None
    if isinstance(settings.devices, DeviceEmbedder):
        given, devices = settings.devices, settings.devices.devices
    else:
        devices = resolve_devices(settings.devices, extractor)
    # The user's --batch-size, else the extractor's own (a foundation model probes the largest
    # batch its GPU holds), else the device's measured default; as the tile engine does.
    batch_size = (
        given.batch_size
        if given
        else runtime.batch_size
        or getattr(extractor, "preferred_batch_size", None)
        or default_batch_size(devices[0])
    )
    workers = settings.workers if settings.workers is not None else runtime.num_workers
    if workers is None:
        workers = default_reader_workers(devices[0])
    return _DevicePlan(devices, given, batch_size, workers)


def embed_items(
    extractor: Extractor,
    jobs: Sequence[ItemJob],
    reader: TileReader,
    runtime: Runtime,
    settings: EngineSettings,
) -> ExtractionResult:
    """Embed items: one row per processed item (the mean of its tiles' features).

    ``settings.devices``: where the model runs, e.g. ``["cuda:0", "cuda:1"]`` or
    ``"cpu,cpu"``; one device runs it in this process, several run one model process each;
    None = every visible CUDA device when the extractor is on CUDA, else its device (and on a
    CPU with local readers, two model processes); a started ``DeviceEmbedder`` is used as
    is and left open for the caller (its batch size wins). Failed items are returned in
    ``skipped`` with the reason; the others go on.
    """
    start = time.perf_counter()
    tally = _Tally()
    todo = _reuse_done(jobs, tally, settings)
    plan = _device_plan(extractor, runtime, settings)
    for folder in sorted({job.out_path.parent for job in todo}):
        remove_stale_temps(folder)  # temporaries of killed runs
    executor_info: dict[str, Any] = {"executor": None}
    if todo:
        executor_info = _compute(extractor, todo, reader, settings, plan, tally)
    return _result(extractor, jobs, todo, tally, plan, settings, executor_info, start)


def _result(
    extractor: Extractor,
    jobs: Sequence[ItemJob],
    todo: Sequence[ItemJob],
    tally: _Tally,
    plan: _DevicePlan,
    settings: EngineSettings,
    executor_info: dict[str, Any],
    start: float,
) -> ExtractionResult:
    ok = sorted(tally.rows)
    seconds = time.perf_counter() - start
    tally.outcomes.sort(key=lambda d: d["index"])
    dirs = sorted({str(job.out_path.parent) for job in jobs})
    empty = np.empty((0, extractor.feature_dim), np.float32)
    return ExtractionResult(
        features=np.stack([tally.rows[i] for i in ok]) if ok else empty,
        ok=ok,
        skipped=tally.skipped,
        cached=len(jobs) - len(todo),
        computed=tally.computed,
        seconds=seconds,
        tile_counts=np.asarray([tally.counts[i] for i in ok], dtype=np.float64),
        details={
            "h5_dir": dirs[0] if len(dirs) == 1 else dirs,
            f"per_{settings.unit}": tally.outcomes,
            "tiles_computed": tally.tiles_embedded,
            "tiles_cached": tally.cached_tiles,
            "tiles_per_second": tally.tiles_embedded / seconds if seconds > 0 else 0.0,
            "model_seconds": round(tally.model_seconds, 3),
            "batch_size": plan.batch_size,
            "devices": plan.devices,
            "chunk_tiles": settings.chunk_tiles,
            **executor_info,
        },
    )
