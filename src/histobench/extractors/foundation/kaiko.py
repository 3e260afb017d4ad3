"""Kaiko.ai ViT-S/16, ViT-B/16, ViT-L/14 and Midnight-12k.

Kaiko models: the timm snapshots ``1aurent/<arch>.kaiko_ai_towards_large_pathology_fms``
(https://huggingface.co/collections/1aurent/kaikoai-models-66636c99d8e1e34bc6dcf795), used as in
TRIDENT's registry: Resize(224), CenterCrop(224), mean = std = 0.5, the model's pooled output
(class token). Midnight: https://huggingface.co/kaiko-ai/midnight (``Dinov2Model`` ViT-g/14,
``transformers`` key names), same transform; the card's classification embedding is
``concat(class token, mean of patch tokens)`` (3,072).
"""

from __future__ import annotations

from histobench.extractors.foundation.recipe import HALF, InputRecipe, Recipe

_INPUT = InputRecipe(resize=224, crop=224, interpolation="bilinear", mean=HALF, std=HALF)
_LICENCE = "kaiko.ai (see the model card)"
_NOTE = "kwargs beyond img_size/num_classes/dynamic_img_size follow timm's architecture defaults"


def _kaiko(name: str, arch: str, img_size: int, dim: int, title: str) -> Recipe:
    return Recipe(
        name=name,
        title=title,
        architecture=arch,
        kwargs={"img_size": img_size, "num_classes": 0, "dynamic_img_size": True},
        input=_INPUT,
        tokens="cls",
        feature_dim=dim,
        licence=_LICENCE,
        card=f"https://huggingface.co/1aurent/{arch}.kaiko_ai_towards_large_pathology_fms",
        hf_repo=f"1aurent/{arch}.kaiko_ai_towards_large_pathology_fms",
        unverified=(_NOTE,),
    )


KAIKO_VITS16 = _kaiko("kaiko-vits16", "vit_small_patch16_224", 224, 384, "Kaiko ViT-S/16")
KAIKO_VITB16 = _kaiko("kaiko-vitb16", "vit_base_patch16_224", 224, 768, "Kaiko ViT-B/16")
KAIKO_VITL14 = _kaiko(
    "kaiko-vitl14", "vit_large_patch14_reg4_dinov2", 518, 1024, "Kaiko ViT-L/14 (4 registers)"
)

MIDNIGHT = Recipe(
    name="midnight",
    title="Midnight-12k (ViT-g/14, DINOv2)",
    architecture="vit_giant_patch14_dinov2",
    kwargs={"img_size": 224, "num_classes": 0, "global_pool": "", "dynamic_img_size": True},
    input=_INPUT,
    tokens="cls+mean",
    feature_dim=3072,
    licence="MIT",
    card="https://huggingface.co/kaiko-ai/midnight",
    hf_repo="kaiko-ai/midnight",
    key_layout="hf-dinov2",
    unused_keys=("embeddings.mask_token",),
    unverified=(
        "position grid 16x16 (config image_size 224) and no register tokens assumed",
        "licence not checked against the card",
    ),
)

RECIPES = (KAIKO_VITS16, KAIKO_VITB16, KAIKO_VITL14, MIDNIGHT)
