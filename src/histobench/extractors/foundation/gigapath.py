"""Prov-GigaPath tile encoder (Microsoft / Providence).

Card: https://huggingface.co/prov-gigapath/prov-gigapath (timm ``hf-hub`` snapshot,
``pytorch_model.bin`` in timm key names); kwargs as in TRIDENT's registry. The card's
transform: Resize(256, bicubic), CenterCrop(224), ImageNet mean/std; the embedding is the
model's output (class token, 1,536).
"""

from __future__ import annotations

from histobench.extractors.foundation.recipe import InputRecipe, Recipe

PROV_GIGAPATH = Recipe(
    name="prov-gigapath",
    title="Prov-GigaPath tile encoder (ViT-g/16, SwiGLU)",
    architecture="vit_giant_patch14_dinov2",
    kwargs={
        "img_size": 224,
        "in_chans": 3,
        "patch_size": 16,
        "embed_dim": 1536,
        "depth": 40,
        "num_heads": 24,
        "mlp_ratio": 5.33334,
        "num_classes": 0,
        "dynamic_img_size": True,
    },
    input=InputRecipe(resize=256, crop=224, interpolation="bicubic"),
    tokens="cls",
    feature_dim=1536,
    licence="Apache-2.0, gated (accept terms on Hugging Face)",
    card="https://huggingface.co/prov-gigapath/prov-gigapath",
    hf_repo="prov-gigapath/prov-gigapath",
    unverified=("init_values 1e-5 and SwiGLU come from timm's vit_giant_patch14_dinov2 defaults",),
)

RECIPES = (PROV_GIGAPATH,)
