"""``bench weights list`` and ``bench weights check NAME|--all``.

``list``: every recipe, where histobench looks, found or missing, the file's digest and the
feature dimension. ``check``: reads each found checkpoint's tensor shapes (memory-mapped, on
the meta device, no tile run) and reports OK or the exact misfit, one line per model.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from histobench.plugins.commands import CommandSpec
from histobench.plugins.errors import ConfigError, HistobenchError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="weights_command", required=True, metavar="list|check")
    listing = sub.add_parser(
        "list", help="every foundation model, where its weights are looked for"
    )
    listing.add_argument(
        "--no-digest", action="store_true", help="skip hashing found files (large files are slow)"
    )
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=cmd_list)
    check = sub.add_parser("check", help="load found checkpoints' shapes strictly; report fits")
    check.add_argument("name", nargs="?", help="a foundation model name (see bench weights list)")
    check.add_argument("--all", action="store_true", help="check every model with weights found")
    check.add_argument("--weights", type=Path, default=None, help="check this file or folder")
    check.add_argument("--json", action="store_true")
    check.set_defaults(func=cmd_check)


def _entry(name: str, explicit: Path | None, digest: bool) -> dict[str, Any]:
    from histobench.extractors.foundation.checkpoint import locate
    from histobench.extractors.foundation.registry import recipe
    from histobench.extractors.weights import file_digest

    r = recipe(name)
    entry: dict[str, Any] = {"name": name, "feature_dim": r.feature_dim, "licence": r.licence}
    try:
        located = locate(r, explicit)
        entry.update(path=str(located.path) if located.path else None, searched=located.searched)
    except HistobenchError as exc:
        entry.update(path=None, searched=[str(explicit)], error=str(exc))
    entry["found"] = entry["path"] is not None
    entry["digest"] = file_digest(Path(entry["path"]))[:16] if digest and entry["found"] else None
    return entry


def cmd_list(args: argparse.Namespace) -> int:
    from histobench.extractors.foundation.registry import RECIPES

    entries = [_entry(name, None, not args.no_digest) for name in RECIPES]
    if args.json:
        sys.stdout.write(json.dumps(entries, indent=2) + "\n")
        return 0
    print(f"{'model':<16} {'dim':>5}  {'weights':<8} where")
    for e in entries:
        state = "found" if e["found"] else "missing"
        where = e["path"] if e["found"] else " | ".join(e["searched"])
        digest = f"  sha256 {e['digest']}" if e["digest"] else ""
        print(f"{e['name']:<16} {e['feature_dim']:>5}  {state:<8} {where}{digest}")
    return 0


def check_one(name: str, explicit: Path | None = None) -> dict[str, Any]:
    """OK or the exact problem for one model's checkpoint; never raises for bad weights."""
    from histobench.extractors.foundation.checkpoint import build_meta, check_fit, read_state
    from histobench.extractors.foundation.registry import recipe

    entry = _entry(name, explicit, digest=False)
    if not entry["found"]:
        return {**entry, "status": "missing", "problem": entry.get("error", "no weights found")}
    r = recipe(name)
    try:
        check_fit(build_meta(r), read_state(Path(entry["path"]), meta=True), r, entry["path"])
    except HistobenchError as exc:
        return {**entry, "status": "error", "problem": str(exc)}
    return {**entry, "status": "ok", "problem": None}


def cmd_check(args: argparse.Namespace) -> int:
    from histobench.extractors.foundation.registry import RECIPES, recipe

    if args.all == bool(args.name):
        raise ConfigError("bench weights check: give a model NAME or --all (not both)")
    if args.all and args.weights:
        raise ConfigError("bench weights check: --weights needs a model NAME, not --all")
    if args.name:
        recipe(args.name)  # an unknown name is a usage error
        results = [check_one(args.name, args.weights)]
    else:
        results = [c for c in (check_one(n) for n in RECIPES) if c["status"] != "missing"]
    if args.json:
        sys.stdout.write(json.dumps(results, indent=2) + "\n")
    else:
        if not results:
            print("no foundation-model weights found (see bench weights list)")
        for c in results:
            detail = c["path"] if c["status"] == "ok" else c["problem"]
            print(f"{c['name']}: {c['status'].upper()} {detail}")
    return 1 if any(c["status"] != "ok" for c in results) else 0


WEIGHTS_COMMAND = CommandSpec(
    name="weights",
    help="foundation-model weights: where they are looked for, and whether they fit",
    add_arguments=add_arguments,
)
