"""Virchow and Virchow2 (Paige).

Cards: https://huggingface.co/paige-ai/Virchow and https://huggingface.co/paige-ai/Virchow2
(timm ``hf-hub`` snapshots: ``config.json`` + ``model.safetensors`` in timm key names). The
cards build the transform with timm's ``resolve_data_config`` (bicubic, crop_pct 1.0, ImageNet
mean/std) and embed a tile as ``concat(class token, mean of the patch tokens)``; Virchow2's
4 register tokens (output positions 1-4) are excluded from the mean.
"""

from __future__ import annotations

import torch
from timm.layers import SwiGLUPacked

from histobench.extractors.foundation.recipe import InputRecipe, Recipe

_LICENCE = "CC-BY-NC-ND 4.0, gated (non-commercial research; accept terms on Hugging Face)"
_BASE = {
    "img_size": 224,
    "init_values": 1e-5,
    "num_classes": 0,
    "mlp_ratio": 5.3375,
    "global_pool": "",
    "dynamic_img_size": True,
    "mlp_layer": SwiGLUPacked,
    "act_layer": torch.nn.SiLU,
}

VIRCHOW = Recipe(
    name="virchow",
    title="Virchow (ViT-H/14, SwiGLU)",
    architecture="vit_huge_patch14_224",
    kwargs=dict(_BASE),
    input=InputRecipe(resize=224, crop=224, interpolation="bicubic"),
    tokens="cls+mean",
    feature_dim=2560,
    licence=_LICENCE,
    card="https://huggingface.co/paige-ai/Virchow",
    hf_repo="paige-ai/Virchow",
)

VIRCHOW2 = Recipe(
    name="virchow2",
    title="Virchow2 (ViT-H/14, 4 register tokens, SwiGLU)",
    architecture="vit_huge_patch14_224",
    kwargs={**_BASE, "reg_tokens": 4},
    input=InputRecipe(resize=224, crop=224, interpolation="bicubic"),
    tokens="cls+mean",
    feature_dim=2560,
    licence=_LICENCE,
    card="https://huggingface.co/paige-ai/Virchow2",
    hf_repo="paige-ai/Virchow2",
)

RECIPES = (VIRCHOW, VIRCHOW2)
