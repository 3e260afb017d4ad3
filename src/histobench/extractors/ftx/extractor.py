"""The ``ftx`` extractor: a ``bench finetune`` folder → Part B's last hidden activations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from histobench.benchmark import home
from histobench.extractors.backbones import build_backbone
from histobench.extractors.ftx.card import WEIGHTS, read_card
from histobench.extractors.ftx.model import FTXFeatures, FTXModel, make_head
from histobench.extractors.ftx.spec import FTXOptions
from histobench.extractors.weights import file_digest, load_state_dict
from histobench.plugins.errors import WeightsError
from histobench.plugins.specs import Extractor, Runtime
from histobench.plugins.torch import Preprocessing, TorchExtractor


def resolve_folder(options: FTXOptions) -> Path:
    if options.weights is not None:
        path = options.weights.expanduser()
        return path.parent if path.is_file() else path
    return home.weights_dir() / options.name


def load_ftx(folder: Path, expected_classes: list[str] | None = None) -> tuple[FTXModel, dict]:
    """Rebuild Part A + Part B from a fine-tuning folder; checks card, digest and classes."""
    if not folder.is_dir():
        raise WeightsError(
            f"{folder}: FTX weights folder not found; create it with 'bench finetune --out "
            f"{folder}' or pass the folder with --weights ('bench demo' leaves demo-size FTX "
            "weights in ftx-demo-* beside it)"
        )
    card = read_card(folder)
    weights = folder / WEIGHTS
    if not weights.is_file():
        raise WeightsError(f"{weights}: weights file missing")
    if file_digest(weights) != card["weights_digest"]:
        raise WeightsError(f"{weights}: sha256 does not match the model card (corrupt or replaced)")
    classes = list(card["classes"])
    if expected_classes is not None and sorted(expected_classes) != sorted(classes):
        raise WeightsError(
            f"{folder}: trained on classes {','.join(classes)}, expected "
            f"{','.join(expected_classes)}"
        )
    try:
        b = card["backbone"]
        head_info = card["head"]
        # Architecture only: every tensor comes from weights.safetensors.
        backbone = build_backbone(
            b["name"], pretrained=False, input_size=card["preprocessing"]["size"]
        )
        head = make_head(backbone.feature_dim, int(head_info["hidden_dim"]), len(classes), 0)
    except (KeyError, TypeError, ValueError) as exc:
        raise WeightsError(f"{folder}: model card is incomplete ({exc})") from exc
    model = FTXModel(backbone.model, head)
    state = load_state_dict(weights)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise WeightsError(f"{weights}: weights do not fit the card's architecture") from exc
    return model.eval(), card


def preprocessing_from_card(card: dict[str, Any]) -> Preprocessing:
    p = card["preprocessing"]
    return Preprocessing(
        size=int(p["size"]),
        mean=tuple(float(v) for v in p["mean"]),  # type: ignore[arg-type]
        std=tuple(float(v) for v in p["std"]),  # type: ignore[arg-type]
        resample=str(p.get("resample", "bilinear")),
    )


def build_ftx(options: FTXOptions, runtime: Runtime) -> Extractor:
    folder = resolve_folder(options)
    model, card = load_ftx(folder, options.classes)
    identity = {
        "extractor": "ftx",
        "backbone": card["backbone"]["name"],
        # The cache key follows the weights: new weights, new features.
        "weights_digest": card["weights_digest"],
        "layer": "head.relu(fc2)",
    }
    feature_dim = int(card["head"]["hidden_dim"])
    return TorchExtractor(
        "ftx", FTXFeatures(model), feature_dim, preprocessing_from_card(card), identity, runtime
    )
