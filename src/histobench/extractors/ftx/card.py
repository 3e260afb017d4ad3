"""The model card (``model_card.json``) and the training-curve figure of a fine-tuning run."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

from histobench.extractors.ftx.checkpoint import atomic_write_text
from histobench.plugins.errors import WeightsError

CARD = "model_card.json"
WEIGHTS = "weights.safetensors"
CURVES = "training_curves.png"
CARD_FORMAT = "histobench-ftx"
CARD_VERSION = 1
REQUIRED = ("backbone", "classes", "preprocessing", "head", "weights_digest", "recipe")


def versions() -> dict[str, str]:
    import numpy
    import timm
    import torch

    from histobench import __version__

    return {
        "histobench": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "timm": timm.__version__,
        "numpy": numpy.__version__,
    }


def write_card(out: Path, card: dict[str, Any]) -> Path:
    path = out / CARD
    body = {"format": CARD_FORMAT, "format_version": CARD_VERSION, **card}
    atomic_write_text(path, json.dumps(body, indent=2, default=str) + "\n")
    return path


def read_card(folder: Path) -> dict[str, Any]:
    """Read and check a fine-tuning folder's card; any defect is a one-line WeightsError."""
    path = folder / CARD
    if not path.is_file():
        raise WeightsError(f"{folder}: no {CARD}; not a 'bench finetune' output folder")
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WeightsError(f"{path}: unreadable model card ({type(exc).__name__})") from exc
    if not isinstance(card, dict) or card.get("format") != CARD_FORMAT:
        raise WeightsError(f"{path}: not a histobench FTX model card")
    if card.get("format_version") != CARD_VERSION:
        raise WeightsError(f"{path}: card format version {card.get('format_version')} unsupported")
    missing = [k for k in REQUIRED if k not in card]
    if missing:
        raise WeightsError(f"{path}: model card lacks '{missing[0]}'")
    return card


def plot_curves(out: Path, history: list[dict[str, Any]], step1_epochs: int) -> Path | None:
    """Loss and accuracy per epoch, train and val, with the step boundary marked."""
    if not history:
        return None
    import matplotlib

    matplotlib.use("Agg")  # no display on servers; also safe under pytest
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for ax, metric, label in ((axes[0], "loss", "cross-entropy"), (axes[1], "acc", "accuracy")):
        ax.plot(epochs, [h[f"train_{metric}"] for h in history], "o-", label="train")
        val = [h.get(f"val_{metric}") for h in history]
        if any(v is not None for v in val):
            ax.plot(epochs, [float("nan") if v is None else v for v in val], "s-", label="val")
        if 0 < step1_epochs < epochs[-1]:
            ax.axvline(step1_epochs + 0.5, color="grey", ls="--", lw=1)
            ax.text(step1_epochs + 0.6, ax.get_ylim()[1], "step 2", va="top", fontsize=8)
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.legend()
    fig.suptitle("FTX fine-tuning (step 1: head only; step 2: backbone only)")
    path = out / CURVES
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    tmp.replace(path)
    return path
