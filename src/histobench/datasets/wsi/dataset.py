"""The ``slides`` data set: a folder of whole-slide images or a slide manifest CSV.

Its items are slides; its embedder (``embed_slides`` bound to the options below) tiles,
normalises and embeds them into per-slide HDF5 files, and gives one mean row per slide.
"""

from __future__ import annotations

import csv
import functools
from pathlib import Path
from typing import Literal

from pydantic import Field

from histobench.datasets.wsi.reader import SLIDE_SUFFIXES
from histobench.datasets.wsi.stain_config import StainConfig
from histobench.datasets.wsi.tiling import TilingConfig
from histobench.plugins.specs import Dataset, DatasetSpec, Item, PluginOptions

# Suffixes that mark a folder of slides one level down (GDC downloads put each slide in a
# <uuid>/ folder). TIFF is left out there: class folders of .tif tiles are a tile data set.
_NESTED_SUFFIXES = tuple(s for s in SLIDE_SUFFIXES if s not in (".tif", ".tiff"))


class SlidesOptions(PluginOptions):
    """How slides become features. Everything but ``executor``, ``workers``, ``devices`` and
    ``out`` is recorded in each HDF5 file and decides whether an existing file can be reused."""

    tiling: TilingConfig = Field(default_factory=TilingConfig)
    stain: StainConfig = Field(default_factory=StainConfig)
    mpp: float | None = Field(
        default=None,
        gt=0,
        description="µm/px for slides that record none (a manifest 'mpp' column wins per slide).",
    )
    executor: str | None = Field(
        default=None,
        description="local, inline, dask-local or dask://HOST:PORT; None = $HISTOBENCH_EXECUTOR "
        "or local.",
    )
    workers: int | None = Field(
        default=None, ge=1, description="Worker processes (local, dask-local); None = all cores."
    )
    devices: str | None = Field(
        default=None,
        description="Where the model runs: e.g. cuda:0,cuda:1 (one model process per device) "
        "or cpu; None = every visible CUDA device when the extractor is on CUDA, else its device.",
    )
    out: Path | None = Field(
        default=None,
        description="Folder for the per-slide HDF5 files; None = HISTOBENCH_HOME/features/slides/…",
    )
    dtype: Literal["float16", "float32"] = Field(default="float32")
    chunk_tiles: int = Field(default=32, ge=1, description="Tiles per worker task.")
    previews: bool = Field(
        default=True, description="Save each slide's tissue mask and tile grid as PNG."
    )


def _has_path_column(path: Path) -> bool:
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            header = next(csv.reader(fh), [])
    except (OSError, UnicodeDecodeError, csv.Error):
        return False
    return "path" in {name.strip().lower() for name in header}


def looks_like_slides(path: Path) -> bool:
    """A manifest CSV with a ``path`` column, or a folder holding slide files (at the top
    level, or non-TIFF slides one folder down)."""
    path = Path(path)
    if path.is_file():
        return path.suffix.lower() == ".csv" and _has_path_column(path)
    if not path.is_dir():
        return False
    for child in path.iterdir():
        suffix = child.suffix.lower()
        if child.is_file() and suffix in SLIDE_SUFFIXES:
            return True
        if child.is_dir() and any(
            g.is_file() and g.suffix.lower() in _NESTED_SUFFIXES for g in child.iterdir()
        ):
            return True
    return False


def slide_items(source: str | Path) -> list[Item]:
    """Slide records of a folder or manifest → data-set items (fingerprints, mpp, patient)."""
    from histobench.datasets.wsi.manifest import load_slide_records
    from histobench.datasets.wsi.patients import patient_of
    from histobench.datasets.wsi.reader import slide_fingerprint

    items = []
    for record in load_slide_records(source):
        try:
            fingerprint = slide_fingerprint(record.path)
        except OSError:  # missing or unreadable: recorded as a failed slide when embedding
            fingerprint = ""
        items.append(
            Item(
                record.slide_id,
                record.path,
                patient=patient_of(record),
                fingerprint=fingerprint,
                meta={"mpp": record.mpp},
            )
        )
    return items


def load_slides(source: str, options: PluginOptions | None = None) -> Dataset:
    """The ``slides`` data set factory."""
    from histobench.datasets.wsi.embed import embed_slides

    opts = options if isinstance(options, SlidesOptions) else SlidesOptions()
    path = Path(source).expanduser()
    tiling = opts.tiling
    if opts.mpp is not None and tiling.mpp_override is None:
        tiling = tiling.model_copy(update={"mpp_override": opts.mpp})
    embed = functools.partial(
        embed_slides,
        tiling=tiling,
        stain=opts.stain,
        out_dir=opts.out,
        executor=opts.executor,
        workers=opts.workers,
        devices=opts.devices,
        dtype=opts.dtype,
        chunk_tiles=opts.chunk_tiles,
        previews=opts.previews,
    )
    return Dataset(
        name=path.stem if path.is_file() else path.name,
        kind="slides",
        items=slide_items(path),
        root=path if path.is_dir() else path.parent,
        extra={"slides_options": opts.model_dump(mode="json")},
        embed=embed,
    )


SLIDE_DATASET_SPECS: list[DatasetSpec] = [
    DatasetSpec(
        name="slides",
        description="Whole-slide images (.svs/.tif/.ndpi/.mrxs…) in a folder or a manifest CSV "
        "(path, optional slide_id/patient/mpp); tiled, Macenko-normalised, per-slide HDF5.",
        factory=load_slides,
        options_model=SlidesOptions,
        detect=looks_like_slides,
    )
]
