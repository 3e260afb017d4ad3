"""Slides → per-slide HDF5 tile features and one mean vector per slide.

The CPU work of a slide (open, tissue mask, grid, read from the best pyramid level, resize,
Macenko) runs on an executor (``histobench.benchmark.executors``) in chunks of tiles; the
model runs on fixed-size batches as chunks arrive, in this process for one device or in one
process per device (``devices``), so reading the next tiles overlaps embedding the previous
ones. Batches are cut per slide from its first kept tile, so the features do not depend on
the executor, the number of workers, the chunk size or the devices.

Each slide's features go to ``<out>/<slide_id>.h5`` (CLAM/TRIDENT layout, written
atomically). A rerun skips slides whose file exists and carries the same ``slide_key`` (a
digest of extractor identity, tiling, stain settings, dtype, feature code version, slide
content and mpp override); a killed run therefore resumes at slide granularity, and the
next run deletes the temporary file it was writing (``h5io.remove_stale_temps``).
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from histobench.benchmark.extraction import ExtractionResult, default_batch_size
from histobench.datasets.wsi.devices import (
    DeviceEmbedder,
    InProcessEmbedder,
    Pending,
    make_embedder,
    resolve_devices,
    usable_cores,
)
from histobench.datasets.wsi.h5io import (
    FeatureDtype,
    read_slide_features,
    remove_stale_temps,
    write_slide_features,
)
from histobench.datasets.wsi.manifest import SLIDE_FAILURES
from histobench.datasets.wsi.pipeline import TileBatch, normalise_chunk, read_tile_array
from histobench.datasets.wsi.reader import Slide, open_slide
from histobench.datasets.wsi.stain import StainConfig, StainNormalizer
from histobench.datasets.wsi.tiling import TileGeometry, TilingConfig, plan_tiles
from histobench.plugins.errors import DataError, PluginError
from histobench.plugins.specs import Extractor, Item, Runtime, SkippedItem, digest

FORMAT_VERSION = 1
# Default executor spec when the caller names none (e.g. "inline" in small test runs).
EXECUTOR_ENV = "HISTOBENCH_EXECUTOR"


# ----------------------------------------------------------------------------------------
# Worker side: picklable functions, run on the executor
# ----------------------------------------------------------------------------------------


@dataclass
class SlidePlan:
    """The tiles chosen on one slide (the result of ``plan_slide``)."""

    coords: np.ndarray  # (N, 2) level-0 x, y
    geometry: TileGeometry
    mpp: float
    mpp_source: str  # "override" or "file"
    describe: dict[str, Any]
    mask_threshold: float | None
    tissue_fraction: float


def plan_slide(path: str, tiling: TilingConfig, preview_dir: str | None = None) -> SlidePlan:
    """Open a slide, compute its tissue mask and grid (and write preview PNGs if asked)."""
    from histobench.datasets.wsi.mask import save_grid_thumbnail, save_mask_png

    with open_slide(path, mpp_override=tiling.mpp_override) as slide:
        grid = plan_tiles(slide, tiling)
        mpp = slide.mpp
    if preview_dir is not None and grid.mask is not None:
        stem = Path(preview_dir) / Path(path).name
        save_mask_png(grid.mask, f"{stem}.mask.png")
        save_grid_thumbnail(grid.mask, grid.coords, grid.geometry.size_level0, f"{stem}.tiles.png")
    return SlidePlan(
        coords=grid.coords,
        geometry=grid.geometry,
        mpp=mpp,
        mpp_source="file" if tiling.mpp_override is None else "override",
        describe=grid.describe(),
        mask_threshold=None if grid.mask is None else grid.mask.threshold,
        tissue_fraction=0.0 if grid.mask is None else grid.mask.tissue_fraction,
    )


# One open slide and one normaliser per worker thread: opening an .svs re-parses its TIFF
# directory, and a chunk is only a few dozen tiles. Thread-local because Dask's threaded
# workers (processes=False) share this module.
_local = threading.local()


def _worker_slide(path: str, mpp_override: float | None) -> Slide:
    key = (path, mpp_override)
    cached = getattr(_local, "slide", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    if cached is not None:
        cached[1].close()
    slide = open_slide(path, mpp_override=mpp_override)
    _local.slide = (key, slide)
    return slide


def _worker_normalizer(stain: StainConfig | None) -> StainNormalizer | None:
    if stain is None or not stain.enabled:
        return None
    key = stain.model_dump_json()
    cached = getattr(_local, "normalizer", None)
    if cached is None or cached[0] != key:
        cached = (key, StainNormalizer(stain))
        _local.normalizer = cached
    return cached[1]


def read_chunk(
    path: str,
    mpp_override: float | None,
    coords: np.ndarray,
    geometry: TileGeometry,
    stain: StainConfig | None,
) -> TileBatch:
    """Read and normalise ``coords`` of one slide: (kept indices, coords, tiles, failures)."""
    coords = np.asarray(coords).reshape(-1, 2)
    slide = _worker_slide(path, mpp_override)
    normalizer = _worker_normalizer(stain)
    failures: list[tuple[int, str]] = []
    kept, tiles = normalise_chunk(read_tile_array(slide, coords, geometry), normalizer, failures)
    return TileBatch(kept, coords[kept], tiles, failures)


# ----------------------------------------------------------------------------------------
# Main side
# ----------------------------------------------------------------------------------------


@dataclass
class _SlideJob:
    pos: int  # index into the items given
    item: Item
    tiling: TilingConfig  # with this slide's mpp override
    out_path: Path
    key: str
    attrs: dict[str, Any]


@dataclass
class _SlideState:
    job: _SlideJob
    plan: SlidePlan
    n_chunks: int
    started: float
    buffer: list[np.ndarray] = field(default_factory=list)  # HWC uint8 tiles not yet embedded
    features: list[Pending] = field(default_factory=list)  # per batch, in order
    coords: list[np.ndarray] = field(default_factory=list)
    stain_failures: int = 0
    chunks_done: int = 0
    failed: str | None = None

    @property
    def buffered(self) -> int:
        return len(self.buffer)


def _safe_name(slide_id: str) -> str:
    # Manifest ids may contain path separators; the feature file must stay in its folder.
    return slide_id.replace("/", "__").replace("\\", "__")


def slide_features_dir(
    extractor: Extractor,
    tiling: TilingConfig | None = None,
    stain: StainConfig | None = None,
    dtype: FeatureDtype = "float32",
) -> Path:
    """Default output folder: ``features/slides/<extractor key>-<tiling/stain digest>``."""
    stain_id = StainNormalizer(stain or StainConfig()).identity()
    return _default_dir(extractor, tiling or TilingConfig(), stain_id, dtype)


def _default_dir(
    extractor: Extractor, tiling: TilingConfig, stain_id: dict[str, Any], dtype: str
) -> Path:
    from histobench.benchmark import home

    config = digest([_tiling_identity(tiling), stain_id, dtype], length=12)
    return home.features_dir() / "slides" / f"{extractor.cache_key()[:12]}-{config}"


def _tiling_identity(tiling: TilingConfig) -> dict[str, Any]:
    # The mpp override is per slide; it enters each slide's key instead.
    return tiling.model_dump(mode="json", exclude={"mpp_override"})


def _effective_tiling(base: TilingConfig, item: Item) -> TilingConfig:
    meta_tiling = item.meta.get("tiling")
    tiling = base
    if meta_tiling:  # a cohort's own tiling section
        tiling = TilingConfig.model_validate({**base.model_dump(), **dict(meta_tiling)})
    mpp = item.meta.get("mpp")
    if mpp is not None and not (isinstance(mpp, float) and math.isnan(mpp)):
        tiling = tiling.model_copy(update={"mpp_override": float(mpp)})
    return tiling


def _fingerprint(item: Item) -> str:
    if item.fingerprint:
        return item.fingerprint
    from histobench.datasets.wsi.reader import slide_fingerprint

    try:
        return slide_fingerprint(item.path)
    except OSError:
        return ""


def _make_jobs(
    extractor: Extractor,
    items: Sequence[Item],
    tiling: TilingConfig,
    stain_id: dict[str, Any],
    dtype: FeatureDtype,
    out_dir: Path | None,
) -> list[_SlideJob]:
    from histobench.benchmark.environment import feature_code_version

    identity = extractor.identity()
    code = feature_code_version()
    jobs = []
    for pos, item in enumerate(items):
        slide_tiling = _effective_tiling(tiling, item)
        folder = out_dir or _default_dir(extractor, slide_tiling, stain_id, dtype)
        tiling_id = _tiling_identity(slide_tiling)
        config_digest = digest(
            {
                "extractor": extractor.cache_key(),
                "tiling": tiling_id,
                "stain": stain_id,
                "dtype": dtype,
                "code": code,
            }
        )
        fingerprint = _fingerprint(item)
        key = digest(
            {
                "config": config_digest,
                "slide_id": item.item_id,
                "fingerprint": fingerprint,
                "mpp_override": slide_tiling.mpp_override,
            },
            length=24,
        )
        attrs: dict[str, Any] = {
            "histobench_format": FORMAT_VERSION,
            "slide_key": key,
            "config_digest": config_digest,
            "slide_id": item.item_id,
            "slide_path": str(item.path),
            "slide_fingerprint": fingerprint,
            "patient": item.patient or "",
            "extractor": extractor.name,
            "extractor_identity_digest": extractor.cache_key(),
            "extractor_identity": dict(identity),
            "weights_digest": str(identity.get("weights_digest", "")),
            "feature_dim": extractor.feature_dim,
            "feature_dtype": dtype,
            "tile_px": slide_tiling.tile_px,
            "target_mpp": slide_tiling.target_mpp,
            "tiling": tiling_id,
            "mask": slide_tiling.mask.model_dump(mode="json"),
            "min_tissue_fraction": slide_tiling.min_tissue_fraction,
            "normalisation": stain_id,
            "code_version": code,
        }
        out_path = folder / f"{_safe_name(item.item_id)}.h5"
        jobs.append(_SlideJob(pos, item, slide_tiling, out_path, key, attrs))
    return jobs


def _load_done(job: _SlideJob) -> tuple[np.ndarray, int] | None:
    """(mean row, tile count) of a finished slide file made with the same key, else None."""
    if not job.out_path.is_file():
        return None
    try:
        features, _, attrs = read_slide_features(job.out_path)
    except DataError:
        return None  # corrupt: recompute and overwrite
    if attrs.get("slide_key") != job.key or len(features) == 0:
        return None
    return features.astype(np.float64).mean(axis=0).astype(np.float32), len(features)


def _chunks(n: int, size: int) -> list[tuple[int, int]]:
    return [(start, min(start + size, n)) for start in range(0, n, size)]


Embedder = InProcessEmbedder | DeviceEmbedder


def _drain(embedder: Embedder, state: _SlideState, final: bool) -> None:
    """Embed the slide's buffered tiles in full batches (and the remainder if final)."""
    while state.buffered >= embedder.batch_size or (final and state.buffered):
        take = min(embedder.batch_size, state.buffered)
        batch, state.buffer = state.buffer[:take], state.buffer[take:]
        state.features.append(embedder.submit(batch))


def embed_slides(
    extractor: Extractor | None,
    items: Sequence[Item],
    runtime: Runtime,
    *,
    tiling: TilingConfig | Mapping[str, Any] | None = None,
    stain: StainConfig | Mapping[str, Any] | None = None,
    out_dir: str | Path | None = None,
    executor: Any = None,
    workers: int | None = None,
    dtype: FeatureDtype = "float32",
    chunk_tiles: int = 32,
    previews: bool = False,
    devices: str | Sequence[str] | DeviceEmbedder | None = None,
) -> ExtractionResult:
    """Embed slide items: one row per processed slide (the mean of its tiles' features).

    ``items``: ``Item(slide_id, path, patient=..., fingerprint=..., meta={"mpp": float|None,
    "tiling": {...}})``; a per-item ``mpp`` overrides the file's, a per-item ``tiling`` dict
    overrides fields of ``tiling``. ``executor``: a spec string (``local``, ``inline``,
    ``dask-local``, ``dask://HOST:PORT``) or a ``TaskExecutor`` (left open for the caller);
    None = ``$HISTOBENCH_EXECUTOR`` or ``local``. ``workers`` (else ``runtime.num_workers``,
    else ``default_slide_workers``) sizes an executor made here. ``devices``: where the
    model runs, e.g. ``["cuda:0", "cuda:1"]`` or ``"cpu,cpu"``; one device runs it in this
    process, several run one model process each; None = every visible CUDA device when
    the extractor is on CUDA, else its device; a started ``DeviceEmbedder`` is used as
    is and left open for the caller (its batch size wins).
    Failed slides are returned in ``skipped`` with the reason; the others go on.
    """
    from histobench.benchmark.executors import TaskExecutor, make_executor
    from histobench.benchmark.progress import make_progress, rate_text

    if extractor is None:
        raise PluginError("slide data sets need an extractor: pass --extractor NAME")
    start = time.perf_counter()
    base_tiling = (
        tiling if isinstance(tiling, TilingConfig) else TilingConfig.model_validate(tiling or {})
    )
    stain_cfg = stain if isinstance(stain, StainConfig) else StainConfig.model_validate(stain or {})
    stain_id = StainNormalizer(stain_cfg).identity()  # also validates a reference tile early
    jobs = _make_jobs(
        extractor,
        items,
        base_tiling,
        stain_id,
        dtype,
        Path(out_dir) if out_dir is not None else None,
    )
    rows: dict[int, np.ndarray] = {}
    counts: dict[int, int] = {}
    skipped: list[SkippedItem] = []
    per_slide: list[dict[str, Any]] = []
    todo: list[_SlideJob] = []
    cached_tiles = 0
    for job in jobs:
        done = _load_done(job)
        if done is None:
            todo.append(job)
            continue
        rows[job.pos], counts[job.pos] = done
        cached_tiles += done[1]
        per_slide.append(_outcome(job, "cached", tiles=done[1]))

    given: DeviceEmbedder | None = None
    if isinstance(devices, DeviceEmbedder):
        given, device_list = devices, devices.devices
    else:
        device_list = resolve_devices(devices, extractor)
    batch_size = runtime.batch_size or default_batch_size(device_list[0])
    worker_count = workers if workers is not None else runtime.num_workers
    if worker_count is None:
        worker_count = default_slide_workers(device_list[0])
    for folder in sorted({job.out_path.parent for job in todo}):
        remove_stale_temps(folder)  # temporaries of killed runs
    executor_info: dict[str, Any] = {"executor": None}
    computed = 0
    tiles_embedded, model_seconds = 0, 0.0
    if todo:
        if executor is None:
            executor = os.environ.get(EXECUTOR_ENV) or "local"
        owned = not isinstance(executor, TaskExecutor)
        pool = make_executor(executor, worker_count) if owned else executor
        executor_info = pool.describe()
        if given is None and devices in (None, "auto"):
            device_list = _auto_cpu_models(pool, device_list)
        threads = _model_threads(pool, device_list) if len(device_list) == 1 else None
        owned_embedder: Embedder | None = None  # closed here; a given one stays open
        try:
            if given is None:
                owned_embedder = make_embedder(
                    extractor, device_list, batch_size, int(pool.workers or 0)
                )
            embedder = given or owned_embedder
            assert embedder is not None
            with make_progress("tiles") as bar_view:
                bar = bar_view.add_task(f"slides ({extractor.name})", total=len(todo), rate="")
                t0 = time.perf_counter()
                for state in _run(pool, todo, embedder, stain_cfg, chunk_tiles, previews):
                    job = state.job
                    elapsed = time.perf_counter() - state.started
                    if state.failed is not None:
                        skipped.append(SkippedItem(job.item.item_id, state.failed))
                        per_slide.append(_outcome(job, "failed", reason=state.failed))
                    else:
                        row, n = _finish(state, dtype, embedder)
                        rows[job.pos], counts[job.pos] = row, n
                        computed += 1
                        per_slide.append(
                            _outcome(
                                job,
                                "computed",
                                tiles=n,
                                stain_failures=state.stain_failures,
                                seconds=round(elapsed, 3),
                                read_level=state.plan.geometry.level,
                                mpp=state.plan.mpp,
                            )
                        )
                    bar_view.update(
                        bar,
                        advance=1,
                        rate=rate_text(embedder.tiles, time.perf_counter() - t0, "tiles"),
                    )
            tiles_embedded, model_seconds = embedder.tiles, embedder.seconds
        finally:
            if owned_embedder is not None:
                owned_embedder.close()
            if threads is not None:
                _set_torch_threads(threads)
            if owned:
                pool.close()

    ok = sorted(rows)
    width = extractor.feature_dim
    seconds = time.perf_counter() - start
    per_slide.sort(key=lambda d: d["index"])
    dirs = sorted({str(job.out_path.parent) for job in jobs})
    return ExtractionResult(
        features=np.stack([rows[i] for i in ok]) if ok else np.empty((0, width), np.float32),
        ok=ok,
        skipped=skipped,
        cached=len(jobs) - len(todo),
        computed=computed,
        seconds=seconds,
        tile_counts=np.asarray([counts[i] for i in ok], dtype=np.float64),
        details={
            "h5_dir": dirs[0] if len(dirs) == 1 else dirs,
            "per_slide": per_slide,
            "tiles_computed": tiles_embedded,
            "tiles_cached": cached_tiles,
            "tiles_per_second": tiles_embedded / seconds if seconds > 0 else 0.0,
            "model_seconds": round(model_seconds, 3),
            "batch_size": given.batch_size if given else batch_size,
            "devices": device_list,
            "chunk_tiles": chunk_tiles,
            **executor_info,
        },
    )


def default_slide_workers(device: str) -> int:
    """Reader processes for the ``local`` executor when none is asked for.

    On CPU the model costs ~4× the reading + Macenko of a tile (effnet-lite0, 224 px;
    benchmarks/bench_wsi_tiling.py), so a quarter of the cores read and the rest run the
    model; a GPU model needs every core reading to keep it fed.
    """
    cores = usable_cores()
    if device.startswith("cuda"):
        return max(1, cores - 1)
    return max(1, cores // 4)


def _set_torch_threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)


def _auto_cpu_models(pool: Any, devices: list[str]) -> list[str]:
    """On a CPU with local reader processes, two model processes instead of one in-process model.

    Measured on the CMU slide with 2 cores (BENCHMARKS.md): 2 readers + the model in the main
    process ran at 0.99x the naive loop, 2 readers + 2 single-threaded model processes at 1.67x;
    one process's OpenMP threads stall whenever a reader takes a core from them, two
    independent processes do not. ``--devices cpu`` keeps the single in-process model.
    """
    from histobench.benchmark.executors import LocalExecutor

    if devices != ["cpu"] or not isinstance(pool, LocalExecutor) or not pool.workers:
        return devices
    return ["cpu", "cpu"] if usable_cores() >= 2 else devices


def _model_threads(pool: Any, devices: Sequence[str]) -> int | None:
    """Leave the local workers their cores: returns the thread count to restore, or None.

    Measured on 2 cores: with a worker process busy, a 2-thread model in the main process
    slowed 2–10× (its OpenMP threads spin-wait on each other while one is descheduled);
    a model using the cores the workers leave free does not.
    """
    from histobench.benchmark.executors import LocalExecutor

    if not isinstance(pool, LocalExecutor) or devices[0].startswith("cuda"):
        return None
    import torch

    before = torch.get_num_threads()
    _set_torch_threads(max(1, usable_cores() - pool.workers))
    return before


def _outcome(job: _SlideJob, status: str, **extra: Any) -> dict[str, Any]:
    return {
        "index": job.pos,
        "slide_id": job.item.item_id,
        "slide": str(job.item.path),
        "status": status,
        "h5": str(job.out_path) if status != "failed" else None,
        **extra,
    }


def _finish(state: _SlideState, dtype: FeatureDtype, embedder: Embedder) -> tuple[np.ndarray, int]:
    """Write the slide's HDF5 file; return its mean row computed from the stored values."""
    features = np.concatenate([embedder.result(p) for p in state.features]).astype(dtype)
    coords = np.concatenate(state.coords)
    plan = state.plan
    attrs = {
        **state.job.attrs,
        "mpp": plan.mpp,
        "mpp_source": plan.mpp_source,
        "read_level": plan.geometry.level,
        "read_px": plan.geometry.read_px,
        "tile_size_level0": plan.geometry.size_level0,
        "mask_threshold": plan.mask_threshold,
        "tissue_fraction": plan.tissue_fraction,
        "n_tiles": len(features),
        "n_planned_tiles": len(plan.coords),
        "stain_failures": state.stain_failures,
    }
    write_slide_features(state.job.out_path, features, coords, attrs, dtype=dtype)
    # The mean of what was stored, so a later cached read gives the same row bit for bit.
    return features.astype(np.float64).mean(axis=0).astype(np.float32), len(features)


def _run(
    pool: Any,
    todo: Sequence[_SlideJob],
    embedder: Embedder,
    stain: StainConfig,
    chunk_tiles: int,
    previews: bool,
) -> Iterator[_SlideState]:
    """Yield each slide's final state, in order, while keeping the workers busy.

    Slide plans are submitted two slides ahead; tile chunks stream through a window of
    in-flight tasks sized to the worker count, across slide boundaries.
    """
    lookahead = 2
    window = max(2, 2 * int(getattr(pool, "workers", 1) or 1) + 1)
    stain_arg = stain if stain.enabled else None
    plans: dict[int, Any] = {}

    def submit_plan(j: int) -> None:
        if j < len(todo) and j not in plans:
            job = todo[j]
            preview = str(job.out_path.parent / "previews") if previews else None
            if preview is not None:
                Path(preview).mkdir(parents=True, exist_ok=True)
            plans[j] = pool.submit(plan_slide, str(job.item.path), job.tiling, preview)

    def events() -> Iterator[tuple[Any, ...]]:
        for j in range(min(lookahead, len(todo))):
            submit_plan(j)
        for j, job in enumerate(todo):
            submit_plan(j + lookahead)
            try:
                plan: SlidePlan = plans.pop(j).result()
            except SLIDE_FAILURES as exc:
                yield ("failed", job, str(exc) or type(exc).__name__)
                continue
            if len(plan.coords) == 0:
                yield (
                    "failed",
                    job,
                    f"{job.item.path}: no tissue tiles (mask threshold "
                    f"{plan.mask_threshold}, min tissue fraction "
                    f"{job.tiling.min_tissue_fraction})",
                )
                continue
            spans = _chunks(len(plan.coords), chunk_tiles)
            yield ("plan", job, plan, len(spans))
            for start, stop in spans:
                future = pool.submit(
                    read_chunk,
                    str(job.item.path),
                    job.tiling.mpp_override,
                    plan.coords[start:stop],
                    plan.geometry,
                    stain_arg,
                )
                yield ("chunk", job, start, future)

    queue: deque[tuple[Any, ...]] = deque()
    stream = events()
    in_flight = 0
    exhausted = False
    state: _SlideState | None = None
    while True:
        while not exhausted and in_flight < window:
            try:
                event = next(stream)
            except StopIteration:
                exhausted = True
                break
            queue.append(event)
            in_flight += event[0] == "chunk"
        if not queue:
            return
        event = queue.popleft()
        kind, job = event[0], event[1]
        if kind == "failed":
            failed = _SlideState(job, None, 0, time.perf_counter())  # type: ignore[arg-type]
            failed.failed = event[2]
            yield failed
            continue
        if kind == "plan":
            state = _SlideState(job, event[2], event[3], time.perf_counter())
            continue
        in_flight -= 1
        assert state is not None and state.job is job
        future = event[3]
        try:
            batch: TileBatch = future.result()
        except SLIDE_FAILURES as exc:
            batch = None  # type: ignore[assignment]
            if state.failed is None:
                state.failed = str(exc) or type(exc).__name__
        state.chunks_done += 1
        if batch is not None and state.failed is None:
            state.stain_failures += len(batch.stain_failures)
            state.buffer.extend(batch.tiles)
            state.coords.append(batch.coords)
            _drain(embedder, state, final=False)
        if state.chunks_done == state.n_chunks:
            if state.failed is None:
                _drain(embedder, state, final=True)
                if not state.features:
                    state.failed = (
                        f"{job.item.path}: no tiles left after stain normalisation "
                        f"({state.stain_failures} tiles failed, policy "
                        f"{stain.on_failure!r})"
                    )
            state.buffer = []
            yield state
            state = None
