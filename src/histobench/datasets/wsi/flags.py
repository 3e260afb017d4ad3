"""The slide flags of ``bench extract``, contributed through the ``histobench_command_flags`` hook.

``bench extract`` owns ``--out`` and ``--dtype``; for slides ``--out`` is the folder of the
per-slide HDF5 files, and ``--num-workers`` sizes the reader pool.
"""

from __future__ import annotations

import argparse
from typing import Any

from histobench.plugins import DatasetFlags

# Flag destinations of this group, in the order the refusal message names them.
_DESTS = ("mpp", "target_mpp", "tile_px", "no_normalise", "max_tiles", "executor", "devices")


def add_slide_flags(group: argparse.ArgumentParser) -> None:
    group.add_argument("--mpp", type=float, default=None, help="µm/px for slides recording none")
    group.add_argument("--target-mpp", type=float, default=None, dest="target_mpp")
    group.add_argument("--tile-px", type=int, default=None, dest="tile_px")
    group.add_argument(
        "--no-normalise", action="store_true", dest="no_normalise", help="skip Macenko"
    )
    group.add_argument("--max-tiles", type=int, default=None, dest="max_tiles")
    group.add_argument(
        "--executor", default=None, help="local (default), dask-local or dask://HOST:PORT"
    )
    group.add_argument(
        "--devices",
        default=None,
        help="model devices, e.g. cuda:0,cuda:1 (one model process each); default: all GPUs",
    )


def given_slide_flags(args: argparse.Namespace) -> list[str]:
    return [
        f"--{d.replace('_', '-')}" for d in _DESTS if getattr(args, d, None) not in (None, False)
    ]


def slide_options(args: argparse.Namespace) -> dict[str, Any]:
    """Parsed flags → ``SlidesOptions`` values (validated by the data set's options model)."""
    tiling = {
        key: getattr(args, key)
        for key in ("target_mpp", "tile_px", "max_tiles")
        if getattr(args, key, None) is not None
    }
    values: dict[str, Any] = {"tiling": tiling, "stain": {"enabled": not args.no_normalise}}
    optional = {
        "mpp": args.mpp,
        "executor": args.executor,
        "workers": getattr(args, "num_workers", None),
        "devices": args.devices,
        "out": None if getattr(args, "out", None) is None else str(args.out),
        "dtype": getattr(args, "dtype", None),
    }
    values.update({key: value for key, value in optional.items() if value is not None})
    return values


SLIDE_EXTRACT_FLAGS = DatasetFlags(
    command="extract",
    dataset="slides",
    add_arguments=add_slide_flags,
    options=slide_options,
    given=given_slide_flags,
)
