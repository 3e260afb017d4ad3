"""What a fine-tuning run leaves in ``--out``: its identity, lock, decode scan, weights and card.

Everything here is written atomically (temporary file, then rename), so a killed run leaves
either the previous file or the new one, never half of one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from histobench.extractors.backbones import Backbone, timm_name
from histobench.extractors.ftx import checkpoint as ckpt
from histobench.extractors.ftx.card import CARD, CURVES, WEIGHTS, plot_curves, versions, write_card
from histobench.extractors.ftx.data import TrainingData
from histobench.extractors.ftx.model import FTXModel
from histobench.extractors.ftx.recipe import FinetuneRecipe, RunOptions
from histobench.extractors.weights import file_digest
from histobench.plugins.errors import ConfigError
from histobench.plugins.specs import digest

SCAN_FILE = "scan.json"
OUR_FILES = (WEIGHTS, CARD, CURVES, ckpt.CHECKPOINT_JSON, SCAN_FILE)


def run_identity(recipe: FinetuneRecipe, data: TrainingData, backbone: Backbone) -> dict[str, Any]:
    """Everything that decides the trained weights (not paths, device or worker count)."""
    return {
        "recipe": recipe.model_dump(mode="json"),
        "data_digest": data.digest,
        "classes": data.classes,
        "backbone_model": timm_name(recipe.backbone),
        "backbone_weights_digest": backbone.weights_digest,
    }


def differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    diffs = [
        f"recipe.{k}"
        for k in sorted(set(old.get("recipe", {})) | set(new["recipe"]))
        if old.get("recipe", {}).get(k) != new["recipe"].get(k)
    ]
    names = {
        "data_digest": "data",
        "classes": "classes",
        "backbone_model": "backbone model",
        "backbone_weights_digest": "backbone weights",
    }
    diffs += [label for key, label in names.items() if old.get(key) != new.get(key)]
    return diffs or ["identity"]


def clear_outputs(out: Path) -> None:
    """--overwrite removes only what a fine-tuning run writes, never a user's other files."""
    for name in OUR_FILES:
        (out / name).unlink(missing_ok=True)
    for old in out.glob("checkpoint-e*.safetensors"):
        old.unlink()


@contextmanager
def exclusive(out: Path) -> Iterator[None]:
    """One fine-tuning process per --out; the OS drops the lock if the process is killed."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    with open(out / ".lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            raise ConfigError(f"--out {out}: in use by another 'bench finetune' process") from exc
        yield


def prepare_out(out: Path, overwrite: bool) -> dict[str, Any] | None:
    """Check --out; returns the checkpoint info found there (None for a fresh folder)."""
    if overwrite:
        return None
    info = ckpt.read_checkpoint_info(out)
    if info is None and ((out / CARD).exists() or (out / WEIGHTS).exists()):
        raise ConfigError(
            f"--out {out}: holds fine-tuning outputs without a checkpoint; "
            "pass --overwrite or choose another --out"
        )
    return info


def known_bad(out: Path, info: dict[str, Any] | None) -> dict[str, str] | None:
    """A resumed run reuses its decode scan (checked against the data digest by the caller)."""
    scan = out / SCAN_FILE
    if info is None or not scan.is_file():
        return None
    try:
        record = json.loads(scan.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    data_digest = info.get("identity", {}).get("data_digest")
    if record.get("data_digest") != data_digest:
        return None
    unreadable = record.get("unreadable")
    return unreadable if isinstance(unreadable, dict) else None


def to_json(obj: Any) -> str:
    return json.dumps(obj, indent=1, default=str)


def read_existing_card(out: Path) -> dict[str, Any]:
    from histobench.extractors.ftx.card import read_card

    try:
        return read_card(out)
    except Exception:
        return {}


def _step_summary(history: list[dict[str, Any]], step: int) -> dict[str, float]:
    rows = [h for h in history if h["step"] == step]
    seconds = sum(h["seconds"] for h in rows)
    images = sum(h["images_per_s"] * h["seconds"] for h in rows)
    return {
        "epochs": len(rows),
        "seconds": seconds,
        "images_per_s": images / seconds if seconds > 0 else 0.0,
    }


@dataclass
class RunParts:
    """Everything a fine-tuning run is made of once its inputs are loaded."""

    out: Path
    recipe: FinetuneRecipe
    run: RunOptions
    data: TrainingData
    backbone: Backbone
    model: FTXModel
    device: torch.device
    identity: dict[str, Any]

    @property
    def identity_digest(self) -> str:
        return digest(self.identity, length=32)


def save_weights(out: Path, model: FTXModel) -> str:
    """The final weights as safetensors (atomic); returns their digest."""
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    tmp = out / f".{WEIGHTS}.tmp"
    # One metadata key only: safetensors writes metadata in hash-map order, so several keys
    # would make identical weights hash differently from one process to the next.
    save_file(state, str(tmp), {"format": "histobench-ftx"})
    tmp.replace(out / WEIGHTS)
    return file_digest(out / WEIGHTS)


def _data_card(parts: RunParts) -> dict[str, Any]:
    data = parts.data
    return {
        "path": str(parts.run.data),
        "digest": data.digest,
        "n_tiles": len(data.items),
        "n_train": len(data.train),
        "n_val": len(data.val),
        "split_grouped_by_patient": data.grouped,
        "class_counts": {c: int((data.labels == k).sum()) for k, c in enumerate(data.classes)},
        "skipped": [{"item": s.item_id, "reason": s.reason} for s in data.skipped],
    }


def write_outputs(
    parts: RunParts,
    history: list[dict[str, Any]],
    feature_pass: dict[str, float],
    wall: float,
    resumes: int,
) -> dict[str, Any]:
    """Weights, model card and curves of a finished run."""
    recipe, backbone, device = parts.recipe, parts.backbone, parts.device
    weights_digest = save_weights(parts.out, parts.model)
    last = history[-1] if history else {}
    card = {
        "recipe": recipe.model_dump(mode="json"),
        "identity_digest": parts.identity_digest,
        "classes": parts.data.classes,
        "backbone": {
            "name": recipe.backbone,
            "timm_model": timm_name(recipe.backbone),
            "feature_dim": backbone.feature_dim,
            "weights_source": backbone.weights_source,
            "weights_digest": backbone.weights_digest,
        },
        "head": {
            "layers": ["fc1", "relu", "fc2", "relu", "classifier"],
            "hidden_dim": recipe.hidden_dim,
            "n_classes": len(parts.data.classes),
            "features": "activations after the second ReLU (the classifier's input)",
        },
        "preprocessing": backbone.preprocessing.describe(),
        "weights_file": WEIGHTS,
        "weights_digest": weights_digest,
        "data": _data_card(parts),
        "history": history,
        "final": {k: last.get(k) for k in ("train_loss", "train_acc", "val_loss", "val_acc")},
        "throughput": {
            "step1": {
                **_step_summary(history, 1),
                "mode": "cached-features"
                if recipe.step1_cache_features and recipe.augment == "none"
                else "images",
                "feature_pass": feature_pass or None,
            },
            "step2": _step_summary(history, 2),
        },
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "precision": "bfloat16-autocast" if device.type == "cuda" else "float32",
        "deterministic": device.type == "cpu",
        "wall_time_s": wall,
        "resumes": resumes,
        "versions": versions(),
    }
    write_card(parts.out, card)
    plot_curves(parts.out, history, recipe.step1_epochs)
    return card
