"""``bench extract``: embed a data set into the feature cache (tiles) or per-slide HDF5."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from histobench.cli.main import add_runtime_flags, print_json, report_skipped
from histobench.plugins.errors import ConfigError, DataError

# Flags that only mean something for slide data sets, with their SlidesOptions destination.
_SLIDE_FLAGS = (
    "mpp", "target_mpp", "tile_px", "no_normalise", "max_tiles", "executor", "devices", "out",
)  # fmt: skip


def _option_values(pairs: list[str]) -> dict[str, Any]:
    """``--option input_size=64`` → {"input_size": "64"} (pydantic converts the type)."""
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--option {pair!r}: expected KEY=VALUE")
        values[key.strip()] = value.strip()
    return values


def _slide_options(args: argparse.Namespace) -> Any:
    from histobench.benchmark.config import validate_options
    from histobench.datasets.wsi.dataset import SlidesOptions

    tiling: dict[str, Any] = {}
    if args.target_mpp is not None:
        tiling["target_mpp"] = args.target_mpp
    if args.tile_px is not None:
        tiling["tile_px"] = args.tile_px
    if args.max_tiles is not None:
        tiling["max_tiles"] = args.max_tiles
    values: dict[str, Any] = {"tiling": tiling, "stain": {"enabled": not args.no_normalise}}
    if args.mpp is not None:
        values["mpp"] = args.mpp
    if args.executor is not None:
        values["executor"] = args.executor
    if args.num_workers is not None:
        values["workers"] = args.num_workers
    if args.devices is not None:
        values["devices"] = args.devices
    if args.out is not None:
        values["out"] = str(args.out)
    values["dtype"] = args.dtype
    return validate_options(SlidesOptions, values, "command line", "slide options")


def cmd_extract(args: argparse.Namespace) -> int:
    from histobench.benchmark.config import validate_options
    from histobench.benchmark.environment import resolve_device
    from histobench.benchmark.runner import extract_features, resolve_dataset
    from histobench.datasets.wsi.dataset import SLIDE_DATASET_SPECS, looks_like_slides
    from histobench.plugins.manager import get_plugins
    from histobench.plugins.specs import Runtime

    plugins = get_plugins()
    spec = plugins.extractors.get(args.extractor).spec
    values: dict[str, Any] = _option_values(args.option)
    if args.weights:
        values["weights"] = str(args.weights)
    if spec.prefix and spec.suffix_field and ":" in args.extractor:
        values[spec.suffix_field] = args.extractor.split(":", 1)[1]
    options = validate_options(spec.options_model, values, "command line", "extractor_options")
    if args.dataset is None:
        raise ConfigError("bench extract needs --dataset PATH")
    # Slides are recognised here directly, so the command works whether or not the
    # ``slides`` data set is registered with the plugin manager.
    source_path = Path(args.dataset).expanduser()
    if source_path.exists() and looks_like_slides(source_path):
        ds_spec, source = SLIDE_DATASET_SPECS[0], str(source_path)
    else:
        task_spec = plugins.tasks.get("crc-tissue").spec
        ds_spec, source = resolve_dataset(args.dataset, task_spec, plugins)
    slides = ds_spec.name == "slides"
    used = [
        f"--{f.replace('_', '-')}" for f in _SLIDE_FLAGS if getattr(args, f) not in (None, False)
    ]
    if used and not slides:
        raise ConfigError(f"{' '.join(used)} apply to slide data sets only; {source} is not one")
    ds_options = _slide_options(args) if slides else ds_spec.options_model()
    dataset = ds_spec.factory(source, ds_options)
    runtime = Runtime(resolve_device(args.device), args.seed, args.batch_size, args.num_workers)
    extractor = spec.factory(options, runtime)
    result = extract_features(extractor, dataset, runtime)
    skipped = [{"item_id": s.item_id, "reason": s.reason} for s in dataset.skipped + result.skipped]
    summary: dict[str, Any] = {
        "extractor": args.extractor,
        "dataset": dataset.name,
        "items": len(dataset.items),
        "embedded": len(result.ok),
        "computed": result.computed,
        "cached": result.cached,
        "tiles_per_second": round(
            result.details.get("tiles_per_second", result.tiles_per_second), 2
        ),
        "feature_dim": extractor.feature_dim,
        "skipped": skipped,
        "cache_key": extractor.cache_key(),
    }
    if slides:
        per_slide = result.details.get("per_slide", [])
        summary.update(
            {
                "h5_dir": result.details.get("h5_dir"),
                "h5": [s["h5"] for s in per_slide if s.get("h5")],
                "slides": per_slide,
                "tiles_computed": result.details.get("tiles_computed", 0),
                "tiles_cached": result.details.get("tiles_cached", 0),
                "executor": result.details.get("executor"),
                "workers": result.details.get("workers"),
            }
        )
    if args.json:
        print_json(summary)
    elif slides and result.ok:
        print(
            f"{summary['embedded']}/{summary['items']} slides embedded with {args.extractor} "
            f"({summary['computed']} computed, {summary['cached']} already done; "
            f"{summary['tiles_computed']} tiles at {summary['tiles_per_second']} tiles/s)"
        )
        print(f"features: {summary['h5_dir']}")
        report_skipped(skipped)
    elif not slides:
        print(
            f"{summary['embedded']}/{summary['items']} items embedded with {args.extractor} "
            f"({summary['computed']} computed, {summary['cached']} from cache, "
            f"{summary['tiles_per_second']} tiles/s)"
        )
        report_skipped(skipped)
    if slides and not result.ok:
        # Nothing usable: one line naming how many failed and the first reason.
        first = skipped[0] if skipped else {"item_id": "-", "reason": "no slides"}
        raise DataError(
            f"no slide could be processed ({len(skipped)} failed; first: "
            f"{first['item_id']}: {first['reason']})"
        )
    return 0 if result.ok else 1


def add_extract_parser(sub: Any) -> None:
    p = sub.add_parser(
        "extract", help="embed a data set into the feature cache, or slides into per-slide HDF5"
    )
    p.add_argument("--extractor", required=True)
    p.add_argument("--dataset", required=True)
    p.add_argument("--weights", type=Path, default=None)
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an extractor option, e.g. --option input_size=64 (repeatable)",
    )
    p.add_argument("--json", action="store_true")
    slides = p.add_argument_group("slide data sets")
    slides.add_argument("--mpp", type=float, default=None, help="µm/px for slides recording none")
    slides.add_argument("--target-mpp", type=float, default=None, dest="target_mpp")
    slides.add_argument("--tile-px", type=int, default=None, dest="tile_px")
    slides.add_argument(
        "--no-normalise", action="store_true", dest="no_normalise", help="skip Macenko"
    )
    slides.add_argument("--max-tiles", type=int, default=None, dest="max_tiles")
    slides.add_argument(
        "--executor", default=None, help="local (default), dask-local or dask://HOST:PORT"
    )
    slides.add_argument(
        "--devices",
        default=None,
        help="model devices, e.g. cuda:0,cuda:1 (one model process each); default: all GPUs",
    )
    slides.add_argument("--out", type=Path, default=None, help="folder for the HDF5 files")
    slides.add_argument("--dtype", choices=["float16", "float32"], default="float32")
    add_runtime_flags(p)
    p.set_defaults(func=cmd_extract)
