"""What a foundation-model recipe states, and how its input transform and tokens are applied.

A recipe is data: the timm architecture and keyword arguments that rebuild the publisher's
network, the input transform of its model card, which output tokens form the embedding, the
feature dimension, the licence note and the card it follows. Every detail that could not be
checked against a published source is listed in ``unverified``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image

from histobench.plugins.torch import Preprocessing

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HALF = (0.5, 0.5, 0.5)

# cls: the class token; mean: mean of the patch tokens (class and register tokens excluded);
# cls+mean: both concatenated; head: the network's own pooled output (CNN baselines).
Tokens = Literal["cls", "mean", "cls+mean", "head"]
# How checkpoint key names map onto the timm model (see keymap.py).
KeyLayout = Literal["timm", "dinov2-original", "hf-vit", "hf-dinov2", "timm-0.5-swin"]


@dataclass(frozen=True)
class InputRecipe:
    """Resize the shorter side to ``resize`` (``interpolation``), centre-crop ``crop``, then
    scale to [0, 1] and normalise with ``mean``/``std`` (torchvision's Resize/CenterCrop/
    ToTensor/Normalize on PIL images)."""

    resize: int = 224
    crop: int = 224
    interpolation: Literal["bilinear", "bicubic"] = "bilinear"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


@dataclass(frozen=True)
class Recipe:
    name: str
    title: str
    architecture: str  # a timm model name
    kwargs: Mapping[str, Any]  # timm.create_model keyword arguments (layers given by name)
    input: InputRecipe
    tokens: Tokens
    feature_dim: int
    licence: str
    card: str  # the model card (or paper/code) the recipe follows
    hf_repo: str | None = None  # where a Hugging Face cache would hold it
    key_layout: KeyLayout = "timm"
    # Checkpoint tensors the recipe deliberately leaves unused (e.g. a pooler it does not
    # apply); every other unexpected key is an error.
    unused_keys: tuple[str, ...] = ()
    truncate_after: str | None = None  # CNN baselines: the last stage kept
    unverified: tuple[str, ...] = field(default_factory=tuple)

    def describe(self) -> dict[str, Any]:
        """The recipe as plain JSON values (stored with each run)."""
        return {
            "recipe": self.name,
            "architecture": self.architecture,
            "kwargs": {k: _plain(v) for k, v in sorted(self.kwargs.items())},
            "input": self.input.__dict__,
            "tokens": self.tokens,
            "feature_dim": self.feature_dim,
            "key_layout": self.key_layout,
            "truncate_after": self.truncate_after,
            "licence": self.licence,
            "card": self.card,
        }


def _plain(value: Any) -> Any:
    if isinstance(value, type | type(len)):
        return f"{value.__module__}.{value.__qualname__}"
    if hasattr(value, "func"):  # functools.partial (timm's SwiGLUPacked)
        return f"partial({_plain(value.func)}, {sorted(value.keywords.items())})"
    return value


_PIL = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}


@dataclass(frozen=True)
class CardPreprocessing(Preprocessing):
    """A recipe's input transform (picklable: data-loader workers run it)."""

    resize_to: int = 224
    interpolation: str = "bilinear"

    @classmethod
    def of(cls, recipe: InputRecipe) -> CardPreprocessing:
        return cls(
            size=recipe.crop,
            mean=recipe.mean,
            std=recipe.std,
            resample=recipe.interpolation,
            resize_to=recipe.resize,
            interpolation=recipe.interpolation,
        )

    def __call__(self, image: Image.Image) -> torch.Tensor:
        image = image.convert("RGB")
        w, h = image.size
        if min(w, h) != self.resize_to:
            # torchvision Resize(int): the shorter side becomes resize_to, aspect kept.
            scale = self.resize_to / min(w, h)
            new = (self.resize_to, int(h * scale)) if w <= h else (int(w * scale), self.resize_to)
            image = image.resize(new, _PIL[self.interpolation])
            w, h = image.size
        if (w, h) != (self.size, self.size):
            left = int(round((w - self.size) / 2.0))
            top = int(round((h - self.size) / 2.0))
            image = image.crop((left, top, left + self.size, top + self.size))
        array = np.asarray(image, dtype=np.float32) / 255.0
        mean = np.asarray(self.mean, dtype=np.float32)
        std = np.asarray(self.std, dtype=np.float32)
        return torch.from_numpy(((array - mean) / std).transpose(2, 0, 1).copy())
