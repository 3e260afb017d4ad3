"""``bench extract``: embed a data set into the feature cache (tiles) or per-slide HDF5."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from histobench.benchmark.cli import add_runtime_flags, print_json, report_skipped
from histobench.benchmark.errors import ConfigError


def cmd_extract(args: argparse.Namespace) -> int:
    from histobench.benchmark.config import validate_options
    from histobench.benchmark.environment import resolve_device
    from histobench.benchmark.runner import extract_features, resolve_dataset
    from histobench.benchmark.specs import Runtime
    from histobench.plugins.manager import get_plugins

    plugins = get_plugins()
    spec = plugins.extractors.get(args.extractor).spec
    values: dict[str, Any] = {"weights": str(args.weights)} if args.weights else {}
    if spec.prefix and spec.suffix_field and ":" in args.extractor:
        values[spec.suffix_field] = args.extractor.split(":", 1)[1]
    options = validate_options(spec.options_model, values, "command line", "extractor_options")
    if args.dataset is None:
        raise ConfigError("bench extract needs --dataset PATH")
    task_spec = plugins.tasks.get("crc-tissue").spec
    ds_spec, source = resolve_dataset(args.dataset, task_spec, plugins)
    dataset = ds_spec.factory(source, ds_spec.options_model())
    runtime = Runtime(resolve_device(args.device), args.seed, args.batch_size, args.num_workers)
    extractor = spec.factory(options, runtime)
    result = extract_features(extractor, dataset, runtime)
    summary = {
        "extractor": args.extractor,
        "dataset": dataset.name,
        "items": len(dataset.items),
        "embedded": len(result.ok),
        "computed": result.computed,
        "cached": result.cached,
        "tiles_per_second": round(result.tiles_per_second, 2),
        "feature_dim": extractor.feature_dim,
        "skipped": [
            {"item_id": s.item_id, "reason": s.reason} for s in dataset.skipped + result.skipped
        ],
        "cache_key": extractor.cache_key(),
    }
    if args.json:
        print_json(summary)
    else:
        print(
            f"{summary['embedded']}/{summary['items']} items embedded with {args.extractor} "
            f"({summary['computed']} computed, {summary['cached']} from cache, "
            f"{summary['tiles_per_second']} tiles/s)"
        )
        report_skipped(summary["skipped"])
    return 0 if result.ok else 1


def add_extract_parser(sub: Any) -> None:
    p = sub.add_parser("extract", help="embed a data set into the feature cache")
    p.add_argument("--extractor", required=True)
    p.add_argument("--dataset", required=True)
    p.add_argument("--weights", type=Path, default=None)
    p.add_argument("--json", action="store_true")
    add_runtime_flags(p)
    p.set_defaults(func=cmd_extract)
