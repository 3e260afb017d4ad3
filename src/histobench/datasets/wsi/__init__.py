"""Whole-slide images: reading, tissue masks, tiling, stain normalisation, feature files.

The flow for one slide: ``open_slide`` → ``plan_tiles`` (tissue mask + grid at the target
µm/px) → ``iter_tiles`` / ``read_normalised_tiles`` (best pyramid level, resize, Macenko)
→ features from an extractor → ``write_slide_features`` (CLAM/TRIDENT HDF5 layout).
``embed_slides`` runs that flow for many slides on an executor (resumable, per-slide HDF5);
``SLIDE_DATASET_SPECS`` is the ``slides`` data set built on it.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from histobench.datasets.wsi.dataset import (
        SLIDE_DATASET_SPECS,
        SlidesOptions,
        load_slides,
        looks_like_slides,
    )
    from histobench.datasets.wsi.devices import DeviceEmbedder, resolve_devices
    from histobench.datasets.wsi.embed import (
        default_slide_workers,
        embed_slides,
        slide_features_dir,
    )
    from histobench.datasets.wsi.h5io import (
        is_complete,
        read_slide_features,
        remove_stale_temps,
        write_slide_features,
    )
    from histobench.datasets.wsi.macenko import macenko_batch
    from histobench.datasets.wsi.manifest import (
        SlideOutcome,
        SlideRecord,
        load_slide_records,
        process_slides,
        read_manifest,
        scan_slide_folder,
    )
    from histobench.datasets.wsi.mask import (
        MaskConfig,
        TissueMask,
        compute_tissue_mask,
        save_grid_thumbnail,
        save_mask_png,
    )
    from histobench.datasets.wsi.patients import (
        assign_patients,
        group_by_patient,
        patient_features,
        patient_from_barcode,
    )
    from histobench.datasets.wsi.pipeline import (
        TileBatch,
        iter_normalised_tiles,
        normalise_chunk,
        read_normalised_tiles,
        read_normalised_tiles_parallel,
        read_tile_array,
    )
    from histobench.datasets.wsi.reader import (
        SLIDE_SUFFIXES,
        Slide,
        mpp_from_properties,
        open_slide,
        slide_fingerprint,
    )
    from histobench.datasets.wsi.stain import StainConfig, StainNormalizer, StainResult
    from histobench.datasets.wsi.tiling import (
        TileGeometry,
        TileGrid,
        TilingConfig,
        iter_tiles,
        plan_tiles,
        read_tile,
        read_tiles_from_path,
        tile_slide,
    )

# Names resolve lazily (PEP 562): reading a manifest or an HDF5 file should not pay for
# importing torch (stain) or scikit-image (mask), and spawned worker processes start faster.
_EXPORTS = {
    "SLIDE_DATASET_SPECS": "dataset",
    "SlidesOptions": "dataset",
    "default_slide_workers": "embed",
    "embed_slides": "embed",
    "load_slides": "dataset",
    "looks_like_slides": "dataset",
    "slide_features_dir": "embed",
    "MaskConfig": "mask",
    "SLIDE_SUFFIXES": "reader",
    "Slide": "reader",
    "SlideOutcome": "manifest",
    "SlideRecord": "manifest",
    "StainConfig": "stain",
    "StainNormalizer": "stain",
    "StainResult": "stain",
    "TileBatch": "pipeline",
    "TileGeometry": "tiling",
    "TileGrid": "tiling",
    "TilingConfig": "tiling",
    "TissueMask": "mask",
    "assign_patients": "patients",
    "compute_tissue_mask": "mask",
    "group_by_patient": "patients",
    "is_complete": "h5io",
    "iter_normalised_tiles": "pipeline",
    "iter_tiles": "tiling",
    "load_slide_records": "manifest",
    "mpp_from_properties": "reader",
    "open_slide": "reader",
    "patient_features": "patients",
    "patient_from_barcode": "patients",
    "plan_tiles": "tiling",
    "process_slides": "manifest",
    "read_manifest": "manifest",
    "read_normalised_tiles": "pipeline",
    "read_normalised_tiles_parallel": "pipeline",
    "read_slide_features": "h5io",
    "read_tile": "tiling",
    "read_tiles_from_path": "tiling",
    "save_grid_thumbnail": "mask",
    "save_mask_png": "mask",
    "scan_slide_folder": "manifest",
    "slide_fingerprint": "reader",
    "tile_slide": "tiling",
    "DeviceEmbedder": "devices",
    "resolve_devices": "devices",
    "remove_stale_temps": "h5io",
    "macenko_batch": "macenko",
    "normalise_chunk": "pipeline",
    "read_tile_array": "pipeline",
    "write_slide_features": "h5io",
}

__all__ = [
    "SLIDE_DATASET_SPECS",
    "SlidesOptions",
    "default_slide_workers",
    "embed_slides",
    "load_slides",
    "looks_like_slides",
    "slide_features_dir",
    "MaskConfig",
    "SLIDE_SUFFIXES",
    "Slide",
    "SlideOutcome",
    "SlideRecord",
    "StainConfig",
    "StainNormalizer",
    "StainResult",
    "TileBatch",
    "TileGeometry",
    "TileGrid",
    "TilingConfig",
    "TissueMask",
    "assign_patients",
    "compute_tissue_mask",
    "group_by_patient",
    "is_complete",
    "iter_normalised_tiles",
    "iter_tiles",
    "load_slide_records",
    "mpp_from_properties",
    "open_slide",
    "patient_features",
    "patient_from_barcode",
    "plan_tiles",
    "process_slides",
    "read_manifest",
    "read_normalised_tiles",
    "read_normalised_tiles_parallel",
    "read_slide_features",
    "read_tile",
    "read_tiles_from_path",
    "save_grid_thumbnail",
    "save_mask_png",
    "scan_slide_folder",
    "slide_fingerprint",
    "tile_slide",
    "DeviceEmbedder",
    "resolve_devices",
    "remove_stale_temps",
    "macenko_batch",
    "normalise_chunk",
    "read_tile_array",
    "write_slide_features",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
