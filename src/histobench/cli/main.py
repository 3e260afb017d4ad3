"""The ``bench`` command line. Errors the user can fix print one line and exit non-zero."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from histobench.plugins.errors import ConfigError, HistobenchError, PluginError
from histobench.statistics.results import StatisticsError


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line instead of usage + error
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


# -- list / plugins / schema ------------------------------------------------------------------


def cmd_list(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from histobench.plugins.manager import get_plugins

    plugins = get_plugins()
    registries: dict[str, Any] = {
        "extractors": plugins.extractors,
        "tasks": plugins.tasks,
        "datasets": plugins.datasets,
    }
    registry = registries[args.kind]
    entries = []
    for e in registry.entries():
        spec = e.spec
        row = {
            "name": spec.name + (":<model-name>" if getattr(spec, "prefix", False) else ""),
            "description": spec.description,
            "plugin": e.plugin,
            "distribution": e.distribution,
        }
        if args.kind == "extractors":
            row["feature_dim"] = spec.feature_dim
        if args.kind == "tasks":
            row["metric"] = spec.metric
        entries.append(row)
    if args.json:
        print_json(entries)
        return 0
    table = Table(title=f"histobench {args.kind}")
    for col in entries[0] if entries else ["name"]:
        table.add_column(col)
    for row in entries:
        table.add_row(*[str(v) for v in row.values()])
    Console().print(table)
    return 0


def cmd_plugins(args: argparse.Namespace) -> int:
    from histobench.plugins.manager import get_plugins

    plugins = get_plugins()
    provided: dict[str, dict[str, Any]] = {}
    for kind, registry in (
        ("extractors", plugins.extractors),
        ("tasks", plugins.tasks),
        ("datasets", plugins.datasets),
    ):
        for e in registry.entries():
            entry = provided.setdefault(
                e.plugin, {"plugin": e.plugin, "distribution": e.distribution}
            )
            entry.setdefault(kind, []).append(e.spec.name)
    rows = list(provided.values())
    if args.json:
        print_json(rows)
    else:
        for row in rows:
            parts = [
                f"{k}: {', '.join(row[k])}" for k in ("extractors", "tasks", "datasets") if k in row
            ]
            print(f"{row['plugin']} ({row['distribution']}) — " + "; ".join(parts))
    return 0


def cmd_schema(args: argparse.Namespace) -> int:
    from histobench.benchmark.config import run_config_schema
    from histobench.plugins.manager import get_plugins

    schema = run_config_schema()
    plugins = get_plugins()
    schema["x-plugin-options"] = {
        kind: {e.spec.name: e.spec.options_model.model_json_schema() for e in reg.entries()}
        for kind, reg in (
            ("extractor_options", plugins.extractors),
            ("task_options", plugins.tasks),
            ("dataset_options", plugins.datasets),
        )
    }
    print_json(schema)
    return 0


# -- run / extract / demo ---------------------------------------------------------------------


def _config_from_args(args: argparse.Namespace) -> tuple[Any, str]:
    from histobench.benchmark.config import build_run_config

    overrides = {
        "extractor": args.extractor,
        "task": args.task,
        "dataset": args.dataset,
        "seed": args.seed,
        "device": args.device,
        "batch_size": args.batch_size,
        "num_workers": args.num_workers,
    }
    flag_options = extractor_flag_options(args)
    if flag_options:
        overrides["extractor_options"] = flag_options
    cv_flags = {
        "repeats": args.repeats,
        "folds": args.folds,
        "group_by": getattr(args, "group_by", None),
        "plan": getattr(args, "plan", None),
    }
    config = build_run_config(args.config, overrides, cv_flags)
    if getattr(args, "patients", None):
        # --patients merges into the data set options of the config file.
        config.dataset_options = {**config.dataset_options, "patients_map": str(args.patients)}
    if flag_options and args.config:
        # --weights/--option/--layer merge into the file's extractor options, not replace them.
        from histobench.benchmark.config import load_config_file

        file_opts = load_config_file(args.config).get("extractor_options", {})
        config.extractor_options = {**file_opts, **flag_options}
    return config, str(args.config) if args.config else "command line"


def cmd_run(args: argparse.Namespace) -> int:
    from histobench.benchmark.runner import run_benchmark

    config, source = _config_from_args(args)
    record = run_benchmark(config, source)
    if args.json:
        print_json(record)
    else:
        _print_run_summary(record)
    return 0


def _print_run_summary(record: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(
        f"[bold]{record['extractor']}[/] on [bold]{record['task']}[/] ({record['dataset']}): "
        f"{record['metric']} {record['mean']:.4f} ± {record['std']:.4f} over "
        f"{record['repeats']}×{record['folds']} folds — run {record['run_id']}"
    )
    table = Table(title="per target")
    table.add_column("target")
    table.add_column("mean", justify="right")
    table.add_column("sd", justify="right")
    for name, t in record["per_target"].items():
        table.add_row(name, f"{t['mean']:.4f}", f"{t['std']:.4f}")
    if record["per_target"]:
        console.print(table)
    report_skipped(record["skipped"])


def report_skipped(skipped: list[dict[str, str]]) -> None:
    if not skipped:
        return
    print(f"skipped {len(skipped)} item(s):", file=sys.stderr)
    for s in skipped[:20]:
        print(f"  {s['item_id']}: {s['reason']}", file=sys.stderr)
    if len(skipped) > 20:
        print(f"  … and {len(skipped) - 20} more (see `bench run --json`)", file=sys.stderr)


# -- parser -----------------------------------------------------------------------------------


def add_runtime_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None, dest="batch_size")
    p.add_argument("--num-workers", type=int, default=None, dest="num_workers")


def extractor_flag_options(args: argparse.Namespace) -> dict[str, Any]:
    """``--option KEY=VALUE`` (repeatable), ``--layer NAME`` and ``--weights FILE`` as extractor
    options (strings; the extractor's options model converts the types)."""
    values: dict[str, Any] = {}
    for pair in getattr(args, "option", None) or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--option {pair!r}: expected KEY=VALUE")
        values[key.strip()] = value.strip()
    if getattr(args, "layer", None):
        values["layer"] = args.layer
    if getattr(args, "weights", None):
        values["weights"] = str(args.weights)
    return values


def add_split_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--group-by",
        choices=["patient", "site", "none"],
        default=None,
        dest="group_by",
        help="keep each patient (default) or each TCGA tissue-source site in one fold",
    )
    p.add_argument(
        "--plan", type=Path, default=None, help="split plan CSV (unit,patient,repeat,fold[,site])"
    )
    p.add_argument(
        "--patients",
        type=Path,
        default=None,
        help="CSV mapping tiles to patients (item,patient[,site])",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="bench", description="histobench: is extractor A better than B on task T?"
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

    p = sub.add_parser("list", help="list installed extractors, tasks or data sets")
    p.add_argument("kind", choices=["extractors", "tasks", "datasets"])
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("plugins", help="which installed package provides what")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_plugins)

    p = sub.add_parser("schema", help="print the JSON Schema of run configs and plugin options")
    p.set_defaults(func=cmd_schema)

    p = sub.add_parser("run", help="benchmark one extractor on one task")
    p.add_argument("--extractor", default=None)
    p.add_argument("--task", default=None)
    p.add_argument(
        "--dataset", default=None, help="PATH, a name under HISTOBENCH_HOME/data, or demo"
    )
    p.add_argument("--config", type=Path, default=None, help="a TOML or YAML run config")
    p.add_argument("--weights", type=Path, default=None, help="weights file for the extractor")
    p.add_argument(
        "--option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an extractor option, e.g. --option input_size=299 (repeatable)",
    )
    p.add_argument("--layer", default=None, help="the layer to take features from (keras-model)")
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument("--folds", type=int, default=None)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_split_flags(p)
    add_runtime_flags(p)
    p.set_defaults(func=cmd_run)

    from histobench.cli.demo import add_demo_parser
    from histobench.cli.extract import add_extract_parser
    from histobench.cli.leaderboard import add_parsers as add_leaderboard_parsers
    from histobench.cli.plan import add_plan_parser
    from histobench.cli.rerun import add_rerun_parser

    add_extract_parser(sub)
    add_demo_parser(sub)
    add_leaderboard_parsers(sub)
    add_plan_parser(sub)
    add_rerun_parser(sub)
    add_plugin_commands(sub)
    return parser


def add_plugin_commands(sub: Any) -> None:
    """Subcommands contributed by plugins through the ``histobench_commands`` hook."""
    from histobench.plugins.manager import get_plugins

    for entry in get_plugins().commands.entries():
        spec = entry.spec
        if spec.name in sub.choices:
            raise PluginError(
                f"plugin '{entry.plugin}' ({entry.distribution}) adds the command "
                f"'{spec.name}', which bench already has"
            )
        p = sub.add_parser(spec.name, help=spec.help, description=spec.description)
        spec.add_arguments(p)
        if spec.run is not None:
            p.set_defaults(func=spec.run)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser()
    except HistobenchError as exc:  # a broken plugin: one line, not a traceback
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    args = parser.parse_args(argv)
    if args.version:
        from histobench import __version__

        print(f"histobench {__version__}")
        return 0
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (HistobenchError, StatisticsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # an unexpected failure still gets one line; traceback on request
        if os.environ.get("HISTOBENCH_DEBUG"):
            raise
        print(
            f"internal error: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            " (set HISTOBENCH_DEBUG=1 for the traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
