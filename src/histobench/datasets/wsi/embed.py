"""Slides → per-slide HDF5 tile features and one mean vector per slide.

The extraction engine (``histobench.benchmark.engine``) does the streaming, batching, model
processes, file writing and resuming; this module tells it how to read a slide
(``SlideReader``: open, tissue mask, grid, read from the best pyramid level, resize, Macenko)
and what identifies a slide's features (``slide_jobs``).

Each slide's features go to ``<out>/<slide_id>.h5`` (CLAM/TRIDENT layout). A rerun skips
slides whose file exists and carries the same ``slide_key`` (a digest of extractor identity,
tiling, stain settings, dtype, feature code version, slide content and mpp override).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from histobench.benchmark.devices import DeviceEmbedder
from histobench.benchmark.engine import EngineSettings, embed_items
from histobench.benchmark.h5io import FeatureDtype
from histobench.benchmark.streaming import ItemJob, TileChunk, TilePlan, WorkerCall
from histobench.datasets.wsi.manifest import SLIDE_FAILURES
from histobench.datasets.wsi.pipeline import normalise_chunk, read_tile_array
from histobench.datasets.wsi.reader import Slide, open_slide
from histobench.datasets.wsi.stain import StainConfig, StainNormalizer
from histobench.datasets.wsi.tiling import TileGeometry, TilingConfig, plan_tiles
from histobench.plugins.errors import PluginError
from histobench.plugins.specs import ExtractionResult, Extractor, Item, Runtime, digest

FORMAT_VERSION = 1


# ----------------------------------------------------------------------------------------
# Worker side: picklable top-level functions, run on the executor
# ----------------------------------------------------------------------------------------


def plan_slide(path: str, tiling: TilingConfig, preview_dir: str | None = None) -> TilePlan:
    """Open a slide, compute its tissue mask and grid (and write preview PNGs if asked)."""
    from histobench.datasets.wsi.mask import save_grid_thumbnail, save_mask_png

    with open_slide(path, mpp_override=tiling.mpp_override) as slide:
        grid = plan_tiles(slide, tiling)
        mpp = slide.mpp
    if preview_dir is not None and grid.mask is not None:
        stem = Path(preview_dir) / Path(path).name
        save_mask_png(grid.mask, f"{stem}.mask.png")
        save_grid_thumbnail(grid.mask, grid.coords, grid.geometry.size_level0, f"{stem}.tiles.png")
    geometry = grid.geometry
    return TilePlan(
        coords=grid.coords,
        attrs={
            "mpp": mpp,
            "mpp_source": "file" if tiling.mpp_override is None else "override",
            "read_level": geometry.level,
            "read_px": geometry.read_px,
            "tile_size_level0": geometry.size_level0,
            "mask_threshold": None if grid.mask is None else grid.mask.threshold,
            "tissue_fraction": 0.0 if grid.mask is None else grid.mask.tissue_fraction,
        },
        outcome={"read_level": geometry.level, "mpp": mpp},
        context=geometry,
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
) -> TileChunk:
    """Read and normalise ``coords`` of one slide; ``flagged`` counts failed stain estimates."""
    coords = np.asarray(coords).reshape(-1, 2)
    slide = _worker_slide(path, mpp_override)
    normalizer = _worker_normalizer(stain)
    failures: list[tuple[int, str]] = []
    kept, tiles = normalise_chunk(read_tile_array(slide, coords, geometry), normalizer, failures)
    return TileChunk(coords[kept], tiles, len(failures))


# ----------------------------------------------------------------------------------------
# Main side: how the engine reads slides, and what identifies a slide's features
# ----------------------------------------------------------------------------------------


@dataclass
class SlideReader:
    """The ``TileReader`` of slides: plans and chunk reads as worker calls."""

    stain: StainConfig
    previews: bool = False
    failures: tuple[type[BaseException], ...] = SLIDE_FAILURES
    flagged_label: str = "stain_failures"

    def plan(self, job: ItemJob) -> WorkerCall:
        preview: str | None = None
        if self.previews:
            folder = job.out_path.parent / "previews"
            folder.mkdir(parents=True, exist_ok=True)
            preview = str(folder)
        return plan_slide, (str(job.item.path), job.context, preview)

    def chunk(self, job: ItemJob, plan: TilePlan, start: int, stop: int) -> WorkerCall:
        stain = self.stain if self.stain.enabled else None
        tiling: TilingConfig = job.context
        args = (str(job.item.path), tiling.mpp_override, plan.coords[start:stop], plan.context)
        return read_chunk, (*args, stain)

    def no_tiles(self, job: ItemJob, plan: TilePlan) -> str:
        return (
            f"{job.item.path}: no tissue tiles (mask threshold {plan.attrs['mask_threshold']}, "
            f"min tissue fraction {job.context.min_tissue_fraction})"
        )

    def none_kept(self, job: ItemJob, flagged: int) -> str:
        return (
            f"{job.item.path}: no tiles left after stain normalisation ({flagged} tiles "
            f"failed, policy {self.stain.on_failure!r})"
        )


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


@dataclass(frozen=True)
class _RunIdentity:
    """What every slide of a run shares in its key."""

    extractor: Extractor
    stain_id: dict[str, Any]
    dtype: FeatureDtype
    code: str

    def config_digest(self, tiling_id: dict[str, Any]) -> str:
        return digest(
            {
                "extractor": self.extractor.cache_key(),
                "tiling": tiling_id,
                "stain": self.stain_id,
                "dtype": self.dtype,
                "code": self.code,
            }
        )


def _slide_attrs(
    run: _RunIdentity, item: Item, tiling: TilingConfig, key: str, fingerprint: str
) -> dict[str, Any]:
    """What each slide's HDF5 file records about how it was made."""
    extractor = run.extractor
    identity = extractor.identity()
    tiling_id = _tiling_identity(tiling)
    return {
        "histobench_format": FORMAT_VERSION,
        "slide_key": key,
        "config_digest": run.config_digest(tiling_id),
        "slide_id": item.item_id,
        "slide_path": str(item.path),
        "slide_fingerprint": fingerprint,
        "patient": item.patient or "",
        "extractor": extractor.name,
        "extractor_identity_digest": extractor.cache_key(),
        "extractor_identity": dict(identity),
        "weights_digest": str(identity.get("weights_digest", "")),
        "feature_dim": extractor.feature_dim,
        "feature_dtype": run.dtype,
        "tile_px": tiling.tile_px,
        "target_mpp": tiling.target_mpp,
        "tiling": tiling_id,
        "mask": tiling.mask.model_dump(mode="json"),
        "min_tissue_fraction": tiling.min_tissue_fraction,
        "normalisation": run.stain_id,
        "code_version": run.code,
    }


def slide_jobs(
    run: _RunIdentity, items: Sequence[Item], tiling: TilingConfig, out_dir: Path | None
) -> list[ItemJob]:
    """One engine job per slide: its file, key and attributes, and its own tiling."""
    jobs = []
    for pos, item in enumerate(items):
        slide_tiling = _effective_tiling(tiling, item)
        folder = out_dir or _default_dir(run.extractor, slide_tiling, run.stain_id, run.dtype)
        fingerprint = _fingerprint(item)
        key = digest(
            {
                "config": run.config_digest(_tiling_identity(slide_tiling)),
                "slide_id": item.item_id,
                "fingerprint": fingerprint,
                "mpp_override": slide_tiling.mpp_override,
            },
            length=24,
        )
        attrs = _slide_attrs(run, item, slide_tiling, key, fingerprint)
        out_path = folder / f"{_safe_name(item.item_id)}.h5"
        jobs.append(ItemJob(pos, item, out_path, key, attrs, context=slide_tiling))
    return jobs


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
    else ``default_reader_workers``) sizes an executor made here. ``devices``: see
    ``histobench.benchmark.engine.embed_items``.
    Failed slides are returned in ``skipped`` with the reason; the others go on.
    """
    from histobench.benchmark.environment import feature_code_version

    if extractor is None:
        raise PluginError("slide data sets need an extractor: pass --extractor NAME")
    base_tiling = (
        tiling if isinstance(tiling, TilingConfig) else TilingConfig.model_validate(tiling or {})
    )
    stain_cfg = stain if isinstance(stain, StainConfig) else StainConfig.model_validate(stain or {})
    stain_id = StainNormalizer(stain_cfg).identity()  # also validates a reference tile early
    run = _RunIdentity(extractor, stain_id, dtype, feature_code_version())
    jobs = slide_jobs(run, items, base_tiling, Path(out_dir) if out_dir is not None else None)
    settings = EngineSettings(
        executor=executor,
        workers=workers,
        devices=devices,
        dtype=dtype,
        chunk_tiles=chunk_tiles,
        unit="slide",
        key_attr="slide_key",
    )
    return embed_items(extractor, jobs, SlideReader(stain_cfg, previews), runtime, settings)
