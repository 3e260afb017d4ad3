"""``bench data list|fetch|verify NAME``, contributed through ``histobench_commands``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from histobench.benchmark import home
from histobench.datasets.fetch.catalog import CATALOG, location, status
from histobench.datasets.fetch.gdc import GDC_SETS, GdcRequest, SlideKind, fetch_gdc
from histobench.datasets.fetch.http import FetchSettings, HttpClient
from histobench.datasets.fetch.records import read_record, verify_record
from histobench.datasets.fetch.zenodo import ZENODO_SETS, fetch_zenodo
from histobench.plugins.commands import CommandSpec
from histobench.plugins.errors import ConfigError, DataError

_DEFAULTS = FetchSettings()
_SLIDE_ONLY = ("frozen", "ffpe", "manifest", "max_slides")


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="data_command", parser_class=type(parser))
    parser.set_defaults(func=lambda args: _usage(parser))

    p = sub.add_parser("list", help="the known data sets, their sizes, and which are present")
    _add_dest(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("fetch", help="download, verify and lay out a data set")
    p.add_argument("name", choices=sorted(CATALOG))
    _add_dest(p)
    p.add_argument(
        "--dry-run", action="store_true", help="print what would be fetched, and the bytes"
    )
    kind = p.add_mutually_exclusive_group()
    kind.add_argument("--frozen", action="store_true", help="frozen-section slides (the default)")
    kind.add_argument("--ffpe", action="store_true", help="FFPE diagnostic slides")
    p.add_argument("--manifest", type=Path, default=None, help="a GDC manifest of the slides")
    p.add_argument("--max-slides", type=int, default=None, help="at most N slides (by file name)")
    p.add_argument(
        "--keep-archive", action="store_true", help="keep the Zenodo zip after unpacking"
    )
    p.add_argument(
        "--parallel", type=int, default=_DEFAULTS.parallel, help="files at once (%(default)s)"
    )
    p.add_argument(
        "--retries", type=int, default=_DEFAULTS.retries, help="per request or file (%(default)s)"
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=_DEFAULTS.read_timeout,
        help="seconds a stalled read may wait (%(default)s)",
    )
    p.add_argument("--connect-timeout", type=float, default=_DEFAULTS.connect_timeout)
    p.add_argument(
        "--backoff",
        type=float,
        default=_DEFAULTS.backoff_factor,
        help="backoff factor in seconds: sleeps grow as 2**n times it (%(default)s)",
    )
    p.set_defaults(func=cmd_fetch)

    p = sub.add_parser("verify", help="re-check a fetched data set's checksums")
    p.add_argument("name", choices=sorted(CATALOG))
    _add_dest(p)
    p.set_defaults(func=cmd_verify)  # fmt: skip


def _add_dest(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dest", type=Path, default=None,
        help="folder that holds the data sets (default: HISTOBENCH_HOME/data)",
    )  # fmt: skip


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _parent(args: argparse.Namespace) -> Path:
    return Path(args.dest).expanduser() if args.dest else home.data_dir()


def cmd_list(args: argparse.Namespace) -> int:
    parent = _parent(args)
    rows = [
        {"name": d.name, "source": d.source, "size": d.size, "status": status(d.name, parent),
         "path": str(location(d.name, parent)), "description": d.description}
        for d in CATALOG.values()
    ]  # fmt: skip
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    width = max(len(r["name"]) for r in rows)
    print(f"{'name':<{width}}  {'size':>13}  {'source':<14}  status")
    for r in rows:
        print(f"{r['name']:<{width}}  {r['size']:>13}  {r['source']:<14}  {r['status']}")
        print(f"{'':<{width}}  {r['description']}; {r['path']}")
    return 0


def settings_from_args(args: argparse.Namespace) -> FetchSettings:
    if not 1 <= args.parallel <= 32:
        raise ConfigError(f"--parallel must be between 1 and 32, got {args.parallel}")
    if not 0 <= args.retries <= 20:
        raise ConfigError(f"--retries must be between 0 and 20, got {args.retries}")
    for flag, value in (("--timeout", args.timeout), ("--connect-timeout", args.connect_timeout)):
        if not value > 0:
            raise ConfigError(f"{flag} must be a positive number of seconds, got {value}")
    if args.backoff < 0:
        raise ConfigError(f"--backoff must be >= 0, got {args.backoff}")
    return FetchSettings(
        connect_timeout=args.connect_timeout,
        read_timeout=args.timeout,
        retries=args.retries,
        backoff_factor=args.backoff,
        parallel=args.parallel,
    )


def _slide_request(args: argparse.Namespace, root: Path) -> GdcRequest:
    manifest = args.manifest
    if manifest is not None and (args.frozen or args.ffpe):
        raise ConfigError("--manifest picks the slides itself: drop --frozen/--ffpe")
    if manifest is not None and not manifest.is_file():
        raise ConfigError(f"{manifest}: GDC manifest not found")
    if args.max_slides is not None and args.max_slides < 1:
        raise ConfigError(f"--max-slides must be at least 1, got {args.max_slides}")
    kind: SlideKind | None = None if manifest else ("ffpe" if args.ffpe else "frozen")
    return GdcRequest(GDC_SETS[args.name], root, kind, manifest, args.max_slides, args.dry_run)


def cmd_fetch(args: argparse.Namespace) -> int:
    name = args.name
    given = [f"--{f.replace('_', '-')}" for f in _SLIDE_ONLY if getattr(args, f)]
    if given and name != "tcga-luad-slides":
        raise ConfigError(f"{', '.join(given)} only apply to tcga-luad-slides")
    if args.keep_archive and name not in ZENODO_SETS:
        raise ConfigError("--keep-archive only applies to the Zenodo tile sets")
    client = HttpClient(settings_from_args(args))
    root = location(name, _parent(args))
    if name in ZENODO_SETS:
        line = fetch_zenodo(ZENODO_SETS[name], root, client, dry_run=args.dry_run,
                            keep_archive=args.keep_archive)  # fmt: skip
    elif name == "tcga-luad-slides":
        line = fetch_gdc(_slide_request(args, root), client)
    else:
        line = fetch_gdc(GdcRequest(GDC_SETS[name], root, dry_run=args.dry_run), client)
    print(line)
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    root = location(args.name, _parent(args))
    record = read_record(root, args.name) if root.is_dir() else None
    if record is None:
        raise DataError(f"{args.name}: not fetched at {root} (bench data fetch {args.name})")
    report = verify_record(root, record)
    if report.problems:
        raise DataError(report.line())
    print(report.line())
    return 0


DATA_COMMAND = CommandSpec(
    name="data",
    help="fetch, verify and list the study's public data sets",
    description="Downloads are resumable and md5-verified; rerun an interrupted fetch to "
    "finish it. Base URLs: HISTOBENCH_ZENODO_URL, HISTOBENCH_GDC_URL.",
    add_arguments=add_data_arguments,
)
