"""Hibou-B and Hibou-L (HistAI), rebuilt in timm from their ``transformers`` weights.

Cards: https://huggingface.co/histai/hibou-b and https://huggingface.co/histai/hibou-L; code:
https://github.com/HistAI/hibou (paper: arXiv 2406.05074). Both are DINOv2 ViTs with patch 14,
4 register tokens, layer scale and a fused SwiGLU feed-forward (``build_model`` defaults for
Hibou-B, ``vit_base``; the repository's CellViT ``HibouEncoder`` builds Hibou-L the same way with
``vit_large``), 224-px position grid. The Hugging Face snapshots use a DINOv2 ``transformers``
layout plus ``embeddings.register_tokens`` (custom code, ``trust_remote_code``); their
``pooler_output`` is the class token after the final layer norm, which the repository's example
checks against its own ``x_norm_clstoken`` and TRIDENT uses for Hibou-L. Transform of the
repository's example and TRIDENT: bicubic resize to 224, Hibou mean/std.

DINOv2's SwiGLU hidden width is ``(int(4 * dim * 2 / 3) + 7) // 8 * 8`` (2,048 for ViT-B,
2,736 for ViT-L); timm's packed ``fc1`` holds both halves, hence the mlp ratios below.
"""

from __future__ import annotations

import torch
from timm.layers import SwiGLUPacked

from histobench.extractors.foundation.recipe import InputRecipe, Recipe

_MEAN = (0.7068, 0.5755, 0.722)
_STD = (0.195, 0.2316, 0.1816)
_INPUT = InputRecipe(resize=224, crop=224, interpolation="bicubic", mean=_MEAN, std=_STD)
_UNVERIFIED = (
    "the Hugging Face snapshot's key names are assumed to be transformers Dinov2Model's "
    "(mlp.weights_in/weights_out, embeddings.mask_token) plus embeddings.register_tokens: "
    "its custom modelling code and config.json were not available to check",
    "the repository's example resizes to (224, 224) ignoring aspect, TRIDENT resizes the "
    "shorter side; identical for square tiles, other shapes are centre-cropped here",
)


def _swiglu_ratio(dim: int) -> float:
    hidden = (int(4 * dim * 2 / 3) + 7) // 8 * 8
    return 2 * hidden / dim


def _hibou(
    name: str,
    arch: str,
    dim: int,
    title: str,
    repo: str,
    licence: str,
    extra: tuple[str, ...] = (),
) -> Recipe:
    return Recipe(
        name=name,
        title=title,
        architecture=arch,  # patch 14, 4 registers, layer scale, no_embed_class
        kwargs={
            "img_size": 224,
            "num_classes": 0,
            "global_pool": "token",
            "mlp_layer": SwiGLUPacked,
            "act_layer": torch.nn.SiLU,
            "mlp_ratio": _swiglu_ratio(dim),
            "dynamic_img_size": True,
        },
        input=_INPUT,
        tokens="cls",
        feature_dim=dim,
        licence=licence,
        card=f"https://huggingface.co/{repo}",
        hf_repo=repo,
        key_layout="hf-dinov2",
        unused_keys=("embeddings.mask_token",),
        unverified=_UNVERIFIED + extra,
    )


HIBOU_B = _hibou(
    "hibou-b",
    "vit_base_patch14_reg4_dinov2",
    768,
    "Hibou-B (ViT-B/14, 4 registers, SwiGLU)",
    "histai/hibou-b",
    "Apache-2.0 (repository README and paper)",
)
HIBOU_L = _hibou(
    "hibou-l",
    "vit_large_patch14_reg4_dinov2",
    1024,
    "Hibou-L (ViT-L/14, 4 registers, SwiGLU)",
    "histai/hibou-L",
    "see the card (Hibou-B is Apache-2.0)",
    ("Hibou-L's licence was not available to check",),
)

RECIPES = (HIBOU_B, HIBOU_L)
