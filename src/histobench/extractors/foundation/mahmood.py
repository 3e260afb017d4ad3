"""UNI and UNI2-h (Mahmood Lab).

Cards: https://huggingface.co/MahmoodLab/UNI and https://huggingface.co/MahmoodLab/UNI2-h;
the timm kwargs also match TRIDENT's registry (mahmoodlab/TRIDENT,
trident/patch_encoder_models/load.py). Both ship ``pytorch_model.bin`` in timm key names.
"""

from __future__ import annotations

import torch
from timm.layers import SwiGLUPacked

from histobench.extractors.foundation.recipe import InputRecipe, Recipe

_LICENCE = "CC-BY-NC-ND 4.0, gated (academic research; accept terms on Hugging Face)"

UNI = Recipe(
    name="uni",
    title="UNI (ViT-L/16, DINOv2-trained on Mass-100K)",
    architecture="vit_large_patch16_224",
    kwargs={
        "img_size": 224,
        "patch_size": 16,
        "init_values": 1e-5,
        "num_classes": 0,
        "dynamic_img_size": True,
    },
    input=InputRecipe(resize=224, crop=224, interpolation="bilinear"),
    tokens="cls",
    feature_dim=1024,
    licence=_LICENCE,
    card="https://huggingface.co/MahmoodLab/UNI",
    hf_repo="MahmoodLab/UNI",
)

UNI2_H = Recipe(
    name="uni2-h",
    title="UNI2-h (ViT-H/14, 8 register tokens, SwiGLU)",
    architecture="vit_giant_patch14_224",
    kwargs={
        "img_size": 224,
        "patch_size": 14,
        "depth": 24,
        "num_heads": 24,
        "init_values": 1e-5,
        "embed_dim": 1536,
        "mlp_ratio": 2.66667 * 2,
        "num_classes": 0,
        "no_embed_class": True,
        "mlp_layer": SwiGLUPacked,
        "act_layer": torch.nn.SiLU,
        "reg_tokens": 8,
        "dynamic_img_size": True,
    },
    input=InputRecipe(resize=224, crop=224, interpolation="bilinear"),
    tokens="cls",
    feature_dim=1536,
    licence=_LICENCE,
    card="https://huggingface.co/MahmoodLab/UNI2-h",
    hf_repo="MahmoodLab/UNI2-h",
)

RECIPES = (UNI, UNI2_H)
