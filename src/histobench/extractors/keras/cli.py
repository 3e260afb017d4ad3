"""``bench convert keras-xception WEIGHTS.h5 --out xception.safetensors``.

Contributed through the ``histobench_commands`` hook; needs neither TensorFlow nor Keras (the
Keras file is read with h5py).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from histobench.plugins.commands import CommandSpec
from histobench.plugins.errors import ConfigError


def _convert_keras_xception(args: argparse.Namespace) -> int:
    from histobench.extractors.keras.convert import convert_keras_xception_file

    out: Path = args.out
    if out.suffix != ".safetensors":
        raise ConfigError(f"--out {out}: the converted weights are a .safetensors file")
    if out.exists() and not args.overwrite:
        raise ConfigError(f"--out {out}: exists already (add --overwrite to replace it)")
    summary = convert_keras_xception_file(args.weights, out)
    if args.json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    else:
        print(
            f"wrote {out}: timm legacy_xception, {summary['tensors']} tensors, "
            f"{summary['parameters']:,} parameters (sha256 {str(summary['sha256'])[:12]}…); "
            f"use it with: bench run --extractor imgnet --weights {out}"
        )
    return 0


def _add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="converter", metavar="CONVERTER", parser_class=type(p))
    x = sub.add_parser(
        "keras-xception",
        help="Keras Xception weights (.h5) → timm legacy_xception (.safetensors)",
        description="Convert Keras Xception weights (e.g. the study's "
        "xception_weights_tf_dim_ordering_tf_kernels_notop.h5) into a timm legacy_xception "
        "state dict for the imgnet extractor and bench finetune.",
    )
    x.add_argument("weights", type=Path, help="Keras Xception weights or model file (.h5)")
    x.add_argument("--out", type=Path, required=True, help="the .safetensors file to write")
    x.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    x.add_argument("--json", action="store_true", help="print a JSON summary")
    x.set_defaults(func=_convert_keras_xception)


CONVERT_COMMAND = CommandSpec(
    name="convert",
    help="convert model weights between frameworks (keras-xception)",
    add_arguments=_add_arguments,
)
