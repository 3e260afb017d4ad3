"""``bench finetune``: the two-step FTX recipe from the command line.

The ftx plugin contributes it to ``bench`` through the ``histobench_commands`` hook
(``FINETUNE_COMMAND``); torch is imported only when the command runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from histobench.extractors.ftx.recipe import FinetuneRecipe, RunOptions, validated
from histobench.plugins.commands import CommandSpec

_RECIPE_FLAGS = (
    "backbone", "step1_epochs", "step2_epochs", "batch_size", "lr1", "lr2", "val_fraction",
    "seed", "augment", "input_size", "hidden_dim", "step2_batchnorm",
)  # fmt: skip


def add_finetune_arguments(p: argparse.ArgumentParser) -> None:
    """The flags of ``bench finetune``; defaults come from FinetuneRecipe."""
    d = FinetuneRecipe.model_fields
    p.add_argument("--data", type=Path, required=True, help="tile folder <root>/<CLASS>/<tile>")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument(
        "--backbone",
        default=d["backbone"].default,
        help="effnet-lite0, xception or timm:<model-name> (default: %(default)s)",
    )
    p.add_argument("--weights", type=Path, default=None, help="backbone weights file (ImageNet)")
    p.add_argument(
        "--random-init",
        action="store_true",
        help="start the backbone from a seeded random init (tests, ablations)",
    )
    p.add_argument("--step1-epochs", type=int, default=d["step1_epochs"].default)
    p.add_argument("--step2-epochs", type=int, default=d["step2_epochs"].default)
    p.add_argument("--batch-size", type=int, default=d["batch_size"].default)
    p.add_argument("--lr1", type=float, default=d["lr1"].default)
    p.add_argument("--lr2", type=float, default=d["lr2"].default)
    p.add_argument("--hidden-dim", type=int, default=d["hidden_dim"].default)
    p.add_argument("--val-fraction", type=float, default=d["val_fraction"].default)
    p.add_argument("--seed", type=int, default=d["seed"].default)
    p.add_argument("--augment", choices=["none", "flips"], default=d["augment"].default)
    p.add_argument(
        "--step2-batchnorm", choices=["train", "frozen"], default=d["step2_batchnorm"].default
    )
    p.add_argument("--input-size", type=int, default=d["input_size"].default)
    p.add_argument(
        "--classes",
        default=None,
        help="comma-separated expected class names; the data must match them",
    )
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--num-workers", type=int, default=None)
    p.add_argument(
        "--overwrite", action="store_true", help="replace a different run's outputs in --out"
    )
    p.add_argument("--json", action="store_true", help="print the model card as JSON")


def recipe_from_args(args: argparse.Namespace) -> tuple[FinetuneRecipe, RunOptions]:
    values: dict[str, Any] = {k: getattr(args, k) for k in _RECIPE_FLAGS}
    values["pretrained"] = not args.random_init
    if args.classes:
        values["classes"] = [c.strip() for c in args.classes.split(",") if c.strip()]
    recipe = validated(FinetuneRecipe, values)
    run = validated(
        RunOptions,
        {
            "data": args.data,
            "out": args.out,
            "weights": args.weights,
            "device": args.device,
            "num_workers": args.num_workers,
            "overwrite": args.overwrite,
        },
    )
    assert isinstance(recipe, FinetuneRecipe) and isinstance(run, RunOptions)
    return recipe, run


def cmd_finetune(args: argparse.Namespace) -> int:
    import json

    from histobench.extractors.ftx.train import finetune

    recipe, run = recipe_from_args(args)
    result = finetune(recipe, run)
    card = result.card
    if getattr(args, "json", False):
        sys.stdout.write(json.dumps(card, indent=2, default=str) + "\n")
        return 0
    final = card.get("final", {})
    status = "already complete" if result.already_complete else "done"
    if result.resumed_from_epoch and not result.already_complete:
        status += f" (resumed after epoch {result.resumed_from_epoch})"
    val = final.get("val_acc")
    print(
        f"finetune {status}: {result.out} | train acc {final.get('train_acc', float('nan')):.3f}"
        + (f", val acc {val:.3f}" if val is not None else "")
        + f" | use it with: bench run --extractor ftx --weights {result.out}"
    )
    return 0


FINETUNE_COMMAND = CommandSpec(
    name="finetune",
    help="fine-tune a backbone with the two-step FTX recipe",
    description="Step 1 trains the head (Part B) on a frozen backbone (Part A); step 2 "
    "fine-tunes the backbone under the frozen head. Rerunning the same command resumes.",
    add_arguments=add_finetune_arguments,
    run=cmd_finetune,
)
