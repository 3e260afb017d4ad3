"""Helpers for the FTX tests: a fast recipe, run options, reading weights."""

from __future__ import annotations

from pathlib import Path

import torch


def fast_recipe(**overrides: object):
    from histobench.extractors.ftx.recipe import FinetuneRecipe

    values: dict[str, object] = dict(
        backbone="effnet-lite0",
        step1_epochs=2,
        step2_epochs=1,
        batch_size=8,
        input_size=64,
        val_fraction=0.25,
        seed=0,
    )
    values.update(overrides)
    return FinetuneRecipe(**values)


def run_options(data: Path, out: Path, **overrides: object):
    from histobench.extractors.ftx.recipe import RunOptions

    values: dict[str, object] = dict(data=data, out=out, device="cpu", num_workers=0)
    values.update(overrides)
    return RunOptions(**values)


def read_weights(folder: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(folder / "weights.safetensors"))
