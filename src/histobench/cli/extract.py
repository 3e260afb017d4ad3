"""``bench extract``: embed a data set into the feature cache, a tile-feature file, or per-item HDF5.

Data set plugins add their own flags to this command through the ``histobench_command_flags``
hook (the slides data set: tiling, stain, executor, devices); a flag group applies only when
``--dataset`` resolves to its data set. ``--out`` and ``--dtype`` belong to the command: for
a tile data set ``--out FILE.h5`` exports the features (``features`` N × D, ``item_ids``);
for a data set with its own embedder (slides) its flag group decides what ``--out`` means.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, cast

from histobench.cli.main import add_runtime_flags, print_json, report_skipped
from histobench.plugins.commands import DatasetFlags
from histobench.plugins.errors import ConfigError, DataError
from histobench.plugins.manager import Plugins
from histobench.plugins.specs import Dataset, DatasetSpec, ExtractionResult, Extractor


def _extractor_options(args: argparse.Namespace, plugins: Plugins) -> tuple[Any, Any]:
    from histobench.benchmark.config import validate_options
    from histobench.cli.main import extractor_flag_options

    spec = plugins.extractors.get(args.extractor).spec
    values = extractor_flag_options(args)
    if spec.prefix and spec.suffix_field and ":" in args.extractor:
        values[spec.suffix_field] = args.extractor.split(":", 1)[1]
    options = validate_options(spec.options_model, values, "command line", "extractor_options")
    return spec, options


def _dataset_options(
    args: argparse.Namespace, ds_spec: DatasetSpec, source: str, groups: list[DatasetFlags]
) -> Any:
    """The data set's options from its flag group; flags of another group are refused."""
    from histobench.benchmark.config import validate_options

    own: DatasetFlags | None = None
    for group in groups:
        if group.dataset == ds_spec.name:
            own = group
            continue
        used = group.given(args)
        if used:
            raise ConfigError(
                f"{' '.join(used)} apply to {group.dataset} data sets only; {source} is a "
                f"{ds_spec.name} data set"
            )
    if own is None:
        return ds_spec.options_model()
    return validate_options(
        ds_spec.options_model, own.options(args), "command line", f"{ds_spec.name} options"
    )


def _check_out(args: argparse.Namespace, dataset: Dataset, has_flags: bool) -> None:
    """``--out``/``--dtype`` mean a tile-feature file unless the data set's flags take them."""
    if has_flags:
        return
    if dataset.embed is not None and (args.out is not None or args.dtype is not None):
        raise ConfigError(f"--out and --dtype do not apply to {dataset.kind} data sets")
    if args.dtype is not None and args.out is None:
        raise ConfigError("--dtype applies to the tile-feature file: give --out FILE.h5 too")
    if args.out is not None and Path(args.out).is_dir():
        raise ConfigError(
            f"--out {args.out}: a folder; tile features go to one file, e.g. --out features.h5"
        )


def cmd_extract(args: argparse.Namespace) -> int:
    from histobench.benchmark.environment import resolve_device
    from histobench.benchmark.runner import extract_features, resolve_dataset
    from histobench.plugins.manager import get_plugins
    from histobench.plugins.specs import Runtime

    plugins = get_plugins()
    spec, options = _extractor_options(args, plugins)
    ds_spec, source = resolve_dataset(args.dataset, None, plugins)
    groups = plugins.flags_for("extract")
    ds_options = _dataset_options(args, ds_spec, source or args.dataset, groups)
    dataset = ds_spec.factory(source, ds_options)
    _check_out(args, dataset, any(g.dataset == ds_spec.name for g in groups))
    runtime = Runtime(resolve_device(args.device), args.seed, args.batch_size, args.num_workers)
    extractor = spec.factory(options, runtime)
    result = extract_features(extractor, dataset, runtime)
    skipped = [{"item_id": s.item_id, "reason": s.reason} for s in dataset.skipped + result.skipped]
    summary = _summary(args, dataset, extractor, result, skipped)
    if dataset.embed is None and args.out is not None and result.ok:
        summary["out"] = str(_export_tiles(args, dataset, extractor, result, skipped))
    _report(args, summary, dataset, result, skipped)
    return 0 if result.ok else 1


def _summary(
    args: argparse.Namespace,
    dataset: Dataset,
    extractor: Extractor,
    result: ExtractionResult,
    skipped: list[dict[str, str]],
) -> dict[str, Any]:
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
    if "h5_dir" in result.details:  # one HDF5 file per item (slides)
        per_item = result.details.get("per_slide", result.details.get("per_item", []))
        summary.update(
            {
                "h5_dir": result.details.get("h5_dir"),
                "h5": [s["h5"] for s in per_item if s.get("h5")],
                "slides": per_item,
                "tiles_computed": result.details.get("tiles_computed", 0),
                "tiles_cached": result.details.get("tiles_cached", 0),
                "executor": result.details.get("executor"),
                "workers": result.details.get("workers"),
            }
        )
    return summary


def _export_tiles(
    args: argparse.Namespace,
    dataset: Dataset,
    extractor: Extractor,
    result: ExtractionResult,
    skipped: list[dict[str, str]],
) -> Path:
    """The tile features of the items embedded, in one HDF5 file written atomically."""
    from histobench import __version__
    from histobench.benchmark.environment import feature_code_version
    from histobench.benchmark.h5io import FeatureDtype, write_tile_features

    dtype: FeatureDtype = args.dtype or "float32"
    items = [dataset.items[i] for i in result.ok]
    attrs = {
        "extractor": extractor.name,
        "extractor_identity_digest": extractor.cache_key(),
        "extractor_identity": dict(extractor.identity()),
        "feature_dim": extractor.feature_dim,
        "feature_dtype": dtype,
        "histobench_version": __version__,
        "code_version": feature_code_version(),
        "dataset": dataset.name,
        "dataset_root": str(dataset.root or ""),
        "n_skipped": len(skipped),
        "skipped": skipped,
    }
    ids = [_relative_id(item.path, item.item_id, dataset.root) for item in items]
    return write_tile_features(Path(args.out), result.features, ids, attrs, dtype=dtype)


def _relative_id(path: Path, item_id: str, root: Path | None) -> str:
    """The tile's path under the data set root (POSIX separators), else its item id."""
    if root is not None:
        try:
            return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
        except ValueError:
            pass
    return item_id


def _report(
    args: argparse.Namespace,
    summary: dict[str, Any],
    dataset: Dataset,
    result: ExtractionResult,
    skipped: list[dict[str, str]],
) -> None:
    per_item_files = "h5_dir" in summary
    noun = "slide" if "per_slide" in result.details else "item"
    if args.json:
        print_json(summary)
    elif per_item_files and result.ok:
        print(
            f"{summary['embedded']}/{summary['items']} {noun}s embedded with "
            f"{args.extractor} ({summary['computed']} computed, {summary['cached']} already "
            f"done; {summary['tiles_computed']} tiles at {summary['tiles_per_second']} tiles/s)"
        )
        print(f"features: {summary['h5_dir']}")
        report_skipped(skipped)
    elif not per_item_files:
        print(
            f"{summary['embedded']}/{summary['items']} items embedded with {args.extractor} "
            f"({summary['computed']} computed, {summary['cached']} from cache, "
            f"{summary['tiles_per_second']} tiles/s)"
        )
        if "out" in summary:
            print(f"features: {summary['out']}")
        report_skipped(skipped)
    if per_item_files and not result.ok:
        # Nothing usable: one line naming how many failed and the first reason.
        first = skipped[0] if skipped else {"item_id": "-", "reason": f"no {noun}s"}
        raise DataError(
            f"no {noun} could be processed ({len(skipped)} failed; first: "
            f"{first['item_id']}: {first['reason']})"
        )


def add_extract_parser(sub: Any) -> None:
    from histobench.plugins.manager import get_plugins

    p = sub.add_parser(
        "extract",
        help="embed a data set into the feature cache or a feature file, or slides into "
        "per-slide HDF5",
    )
    p.add_argument("--extractor", required=True)
    p.add_argument("--dataset", required=True, help="PATH or a data set name")
    p.add_argument("--weights", type=Path, default=None)
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an extractor option, e.g. --option input_size=64 (repeatable)",
    )
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="tile data sets: an HDF5 file of the features (features, item_ids); "
        "slides: the folder for the per-slide HDF5 files",
    )
    p.add_argument(
        "--dtype", choices=["float16", "float32"], default=None, help="of the stored features"
    )
    for group in get_plugins().flags_for("extract"):
        flags = p.add_argument_group(f"{group.dataset} data sets")
        # An argument group takes add_argument like a parser; the hook's type names the parser.
        group.add_arguments(cast(argparse.ArgumentParser, flags))
    add_runtime_flags(p)
    p.set_defaults(func=cmd_extract)
