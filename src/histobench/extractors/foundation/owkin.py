"""Phikon and Phikon-v2 (Owkin), rebuilt in timm from their Hugging Face ``transformers`` weights.

Cards: https://huggingface.co/owkin/phikon (``ViTModel``, iBOT ViT-B/16) and
https://huggingface.co/owkin/phikon-v2 (``Dinov2Model``, ViT-L/16). Both embed a tile as the
class token of ``last_hidden_state`` (after the final layer norm), as the cards and TRIDENT do.
The timm equivalents are exact: same tensors, and the layer-norm epsilon of the ``transformers``
configs (1e-12 for ViTModel, 1e-6 for Dinov2Model), so ``transformers`` is not needed.
"""

from __future__ import annotations

from functools import partial

import torch

from histobench.extractors.foundation.recipe import InputRecipe, Recipe

PHIKON = Recipe(
    name="phikon",
    title="Phikon (ViT-B/16, iBOT on TCGA)",
    architecture="vit_base_patch16_224",
    kwargs={
        "img_size": 224,
        "num_classes": 0,
        "global_pool": "token",
        "norm_layer": partial(torch.nn.LayerNorm, eps=1e-12),
    },
    input=InputRecipe(resize=224, crop=224, interpolation="bilinear"),
    tokens="cls",
    feature_dim=768,
    licence="Owkin non-commercial licence",
    card="https://huggingface.co/owkin/phikon",
    hf_repo="owkin/phikon",
    key_layout="hf-vit",
    unused_keys=("pooler.dense.weight", "pooler.dense.bias"),
    unverified=("layer_norm_eps 1e-12 is the ViTConfig default (config.json not checked)",),
)

PHIKON_V2 = Recipe(
    name="phikon-v2",
    title="Phikon-v2 (ViT-L/16, DINOv2 on PANCAN-XL)",
    architecture="vit_large_patch16_224",
    kwargs={
        "img_size": 224,
        "init_values": 1e-5,
        "num_classes": 0,
        "global_pool": "token",
    },
    input=InputRecipe(resize=224, crop=224, interpolation="bilinear"),
    tokens="cls",
    feature_dim=1024,
    licence="Owkin non-commercial licence",
    card="https://huggingface.co/owkin/phikon-v2",
    hf_repo="owkin/phikon-v2",
    key_layout="hf-dinov2",
    unused_keys=("embeddings.mask_token",),
    unverified=("no register tokens and a 14x14 position grid (image_size 224) assumed",),
)

RECIPES = (PHIKON, PHIKON_V2)
