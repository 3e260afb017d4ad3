"""The two-step FTX recipe: step 1 trains Part B on a frozen Part A, step 2 fine-tunes Part A
under a frozen Part B. A checkpoint after every epoch makes a rerun of the same command resume;
on CPU (deterministic algorithms, seeded data order per epoch) the resumed result is bitwise
identical to an uninterrupted run, wherever the first run was killed.

The parts: :mod:`.runtime` (device, determinism), :mod:`.trainer` (one epoch of a step),
:mod:`.outputs` (the ``--out`` folder: identity, lock, scan, weights, card), :mod:`.checkpoint`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from histobench.benchmark import home
from histobench.benchmark.progress import make_progress
from histobench.extractors.backbones import build_backbone
from histobench.extractors.ftx import checkpoint as ckpt
from histobench.extractors.ftx.card import WEIGHTS
from histobench.extractors.ftx.data import load_training_data
from histobench.extractors.ftx.model import FTXModel, make_head
from histobench.extractors.ftx.outputs import (
    SCAN_FILE,
    RunParts,
    clear_outputs,
    differences,
    exclusive,
    known_bad,
    prepare_out,
    read_existing_card,
    run_identity,
    to_json,
    write_outputs,
)
from histobench.extractors.ftx.recipe import FinetuneRecipe, RunOptions
from histobench.extractors.ftx.runtime import (
    cudnn_benchmark,
    default_workers,
    deterministic,
    resolve_device,
)
from histobench.extractors.ftx.trainer import Trainer, step_of
from histobench.plugins.errors import ConfigError


@dataclass
class FinetuneResult:
    out: Path
    card: dict[str, Any]
    resumed_from_epoch: int  # 0 for a fresh run
    already_complete: bool = False


@dataclass
class Progress:
    """Where training stands: restored from the checkpoint, advanced after every epoch."""

    history: list[dict[str, Any]] = field(default_factory=list)
    start: int = 1  # the first epoch still to train
    saved_step: int = 0
    saved_tensors: dict[str, torch.Tensor] | None = None
    saved_optimizer: dict[str, Any] | None = None  # the checkpoint's optimizer record
    wall_before: float = 0.0
    resumes: int = 0


def finetune(recipe: FinetuneRecipe, run: RunOptions) -> FinetuneResult:
    """Run (or resume) the recipe; writes weights, model card and curves to ``run.out``."""
    out = run.out.expanduser()
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    with exclusive(out):
        return _finetune(recipe, run, out)


def _finetune(recipe: FinetuneRecipe, run: RunOptions, out: Path) -> FinetuneResult:
    t_start = time.perf_counter()
    device = resolve_device(run.device)
    workers = run.num_workers if run.num_workers is not None else default_workers(device)
    info = prepare_out(out, run.overwrite)
    parts = _load_parts(recipe, run, out, device, workers, info)
    if info is not None and info.get("identity_digest") != parts.identity_digest:
        what = ", ".join(differences(info.get("identity", {}), parts.identity))
        raise ConfigError(
            f"--out {out}: holds a checkpoint of a different fine-tuning run ({what} differ); "
            "pass --overwrite or choose another --out"
        )
    if info is not None and info.get("complete") and (out / WEIGHTS).is_file():
        return FinetuneResult(
            out, read_existing_card(out), int(info["epoch"]), already_complete=True
        )
    if info is None:
        clear_outputs(out)
    unreadable = {s.item_id: s.reason for s in parts.data.unreadable}
    scan = {"data_digest": parts.data.digest, "unreadable": unreadable}
    ckpt.atomic_write_text(out / SCAN_FILE, to_json(scan))
    trainer = Trainer(recipe, parts.data, parts.model, device, workers)

    cpu = device.type == "cpu"
    devices = [device.index or 0] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices), deterministic(cpu), cudnn_benchmark(not cpu):
        torch.manual_seed(recipe.seed)
        state = _restore(parts, info)
        _train_epochs(parts, trainer, state, t_start)
        wall = state.wall_before + time.perf_counter() - t_start
        card = write_outputs(parts, state.history, trainer.feature_pass, wall, state.resumes)
        _mark_complete(parts, state, wall)
    return FinetuneResult(out, card, state.start - 1)


def _load_parts(
    recipe: FinetuneRecipe,
    run: RunOptions,
    out: Path,
    device: torch.device,
    workers: int,
    info: dict[str, Any] | None,
) -> RunParts:
    """Backbone, data (decode scan reused on resume) and the model, in that order (seeded)."""
    backbone = build_backbone(
        recipe.backbone,
        weights=run.weights,
        weights_dir=home.weights_dir(),
        pretrained=recipe.pretrained,
        seed=recipe.seed,
        input_size=recipe.input_size,
    )
    data = load_training_data(
        run.data.expanduser(),
        recipe.val_fraction,
        recipe.seed,
        recipe.classes,
        workers,
        known_bad(out, info),
    )
    head = make_head(backbone.feature_dim, recipe.hidden_dim, len(data.classes), recipe.seed)
    # channels_last: faster for these convnets on GPU and, measured, on CPU (benchmarks/).
    model = FTXModel(backbone.model, head).to(device).to(memory_format=torch.channels_last)
    identity = run_identity(recipe, data, backbone)
    return RunParts(out, recipe, run, data, backbone, model, device, identity)


def _restore(parts: RunParts, info: dict[str, Any] | None) -> Progress:
    """A fresh start, or the model, RNG and history of the last checkpoint."""
    if info is None:
        return Progress()
    tensors = ckpt.load_checkpoint_tensors(parts.out, info)
    parts.model.load_state_dict(ckpt.model_tensors(tensors))
    ckpt.restore_rng(tensors)
    return Progress(
        history=list(info.get("history", [])),
        start=int(info["epoch"]) + 1,
        saved_step=int(info.get("step", 0)),
        saved_tensors=tensors,
        saved_optimizer=info.get("optimizer"),
        wall_before=float(info.get("wall_s", 0.0)),
        resumes=int(info.get("resumes", 0)) + 1,
    )


def _train_epochs(parts: RunParts, trainer: Trainer, state: Progress, t_start: float) -> None:
    """The remaining epochs, each followed by a checkpoint (model, optimizer, RNG, history)."""
    recipe = parts.recipe
    optimizer: torch.optim.Optimizer | None = None
    current_step = 0
    preprocess = parts.backbone.preprocessing
    with make_progress("img") as progress:
        for epoch in range(state.start, recipe.total_epochs + 1):
            step = step_of(epoch, recipe)
            if step != current_step:
                optimizer = trainer.optimizer(step)
                resuming = epoch == state.start and step == state.saved_step
                if resuming and state.saved_tensors and state.saved_optimizer is not None:
                    ckpt.restore_optimizer(optimizer, state.saved_tensors, state.saved_optimizer)
                current_step = step
            assert optimizer is not None
            metrics = trainer.train_epoch(epoch, step, optimizer, preprocess, progress)
            val = trainer.validate(step, preprocess, progress)
            state.history.append({"epoch": epoch, "step": step, **metrics, **val})
            record = {
                "identity": parts.identity,
                "identity_digest": parts.identity_digest,
                "step": step,
                "history": state.history,
                "wall_s": state.wall_before + time.perf_counter() - t_start,
                "resumes": state.resumes,
                "complete": False,
            }
            ckpt.save_checkpoint(parts.out, epoch, parts.model, optimizer, record)


def _mark_complete(parts: RunParts, state: Progress, wall: float) -> None:
    done = {
        "identity": parts.identity,
        "identity_digest": parts.identity_digest,
        "epoch": parts.recipe.total_epochs,
        "history": state.history,
        "wall_s": wall,
        "resumes": state.resumes,
        "complete": True,
        "tensors": None,
    }
    ckpt.atomic_write_text(parts.out / ckpt.CHECKPOINT_JSON, to_json(done))
    for old in parts.out.glob("checkpoint-e*.safetensors"):
        old.unlink()  # the final weights are in weights.safetensors
