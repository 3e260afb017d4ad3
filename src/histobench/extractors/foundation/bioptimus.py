"""H-optimus-0, H-optimus-1 and H0-mini (Bioptimus).

Cards: https://huggingface.co/bioptimus/H-optimus-0, https://huggingface.co/bioptimus/H-optimus-1,
https://huggingface.co/bioptimus/H0-mini (timm ``hf-hub`` snapshots in timm key names). The
H-optimus kwargs and normalisation follow the cards as mirrored in TRIDENT's registry; H0-mini's
embedding (class token + mean of patch tokens, 1,536) follows Bioptimus' SDK model spec
(https://docs.bioptimus.com/sdk-reference/models/types).
"""

from __future__ import annotations

import torch
from timm.layers import SwiGLUPacked

from histobench.extractors.foundation.recipe import InputRecipe, Recipe

_MEAN = (0.707223, 0.578729, 0.703617)
_STD = (0.211883, 0.230117, 0.177517)
_INPUT = InputRecipe(resize=224, crop=224, interpolation="bilinear", mean=_MEAN, std=_STD)
_GIANT = {
    "img_size": 224,
    "init_values": 1e-5,
    "num_classes": 0,
    "global_pool": "token",
    "dynamic_img_size": False,
}

H_OPTIMUS_0 = Recipe(
    name="h-optimus-0",
    title="H-optimus-0 (ViT-g/14, 4 register tokens)",
    architecture="vit_giant_patch14_reg4_dinov2",
    kwargs=dict(_GIANT),
    input=_INPUT,
    tokens="cls",
    feature_dim=1536,
    licence="Apache-2.0",
    card="https://huggingface.co/bioptimus/H-optimus-0",
    hf_repo="bioptimus/H-optimus-0",
    unverified=("the card feeds 224-px tiles without resizing; bilinear for other sizes",),
)

H_OPTIMUS_1 = Recipe(
    name="h-optimus-1",
    title="H-optimus-1 (ViT-g/14, 4 register tokens)",
    architecture="vit_giant_patch14_reg4_dinov2",
    kwargs=dict(_GIANT),
    input=_INPUT,
    tokens="cls",
    feature_dim=1536,
    licence="gated, academic research only (Bioptimus licence)",
    card="https://huggingface.co/bioptimus/H-optimus-1",
    hf_repo="bioptimus/H-optimus-1",
    unverified=("the card feeds 224-px tiles without resizing; bilinear for other sizes",),
)

H0_MINI = Recipe(
    name="h0-mini",
    title="H0-mini (ViT-B/14 distilled from H-optimus-0, 4 register tokens, SwiGLU)",
    architecture="vit_base_patch14_reg4_dinov2",
    kwargs={
        "img_size": 224,
        "num_classes": 0,
        "global_pool": "",
        "mlp_layer": SwiGLUPacked,
        "act_layer": torch.nn.SiLU,
        "dynamic_img_size": True,
    },
    input=_INPUT,
    tokens="cls+mean",
    feature_dim=1536,
    licence="CC-BY-NC-ND 4.0, gated",
    card="https://huggingface.co/bioptimus/H0-mini",
    hf_repo="bioptimus/H0-mini",
    unverified=(
        "mlp_ratio and init_values are timm's defaults for vit_base_patch14_reg4_dinov2 "
        "(the snapshot's config.json was not available to check)",
    ),
)

RECIPES = (H_OPTIMUS_0, H_OPTIMUS_1, H0_MINI)
