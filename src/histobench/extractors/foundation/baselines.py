"""ImageNet baselines: DINOv2 ViT-S/B/L (Meta) and ResNet-50 truncated after layer 3.

DINOv2: https://github.com/facebookresearch/dinov2 (``dinov2_vit{s,b,l}14_pretrain.pth``, whose
keys are timm's plus an unused ``mask_token``; timm's ``vit_*_patch14_dinov2.lvd142m`` snapshots
load too). Eval transform of the DINOv2 repo: Resize(256, bicubic), CenterCrop(224), ImageNet
mean/std; embedding: the normalised class token. The 518-px position grid is interpolated to
the 16x16 grid of a 224 crop by timm (bicubic).

ResNet-50 (ImageNet, torchvision weights ``resnet50.tv_in1k``) truncated after layer 3 with
global average pooling (1,024): the ImageNet baseline of the UNI paper, as in TRIDENT.
"""

from __future__ import annotations

from histobench.extractors.foundation.recipe import InputRecipe, Recipe

_DINO_INPUT = InputRecipe(resize=256, crop=224, interpolation="bicubic")
_DINO_NOTE = (
    "timm's position-embedding interpolation may differ from the DINOv2 repo's at rounding level",
)


def _dinov2(size: str, arch: str, dim: int) -> Recipe:
    return Recipe(
        name=f"dinov2-vit{size}14",
        title=f"DINOv2 ViT-{size.upper()}/14 (ImageNet baseline, LVD-142M)",
        architecture=arch,
        kwargs={"img_size": 518, "num_classes": 0, "dynamic_img_size": True},
        input=_DINO_INPUT,
        tokens="cls",
        feature_dim=dim,
        licence="Apache-2.0",
        card="https://github.com/facebookresearch/dinov2",
        hf_repo=f"timm/{arch}.lvd142m",
        key_layout="dinov2-original",
        unused_keys=("mask_token",),
        unverified=_DINO_NOTE,
    )


DINOV2_S = _dinov2("s", "vit_small_patch14_dinov2", 384)
DINOV2_B = _dinov2("b", "vit_base_patch14_dinov2", 768)
DINOV2_L = _dinov2("l", "vit_large_patch14_dinov2", 1024)

RESNET50_TRUNC = Recipe(
    name="resnet50-trunc",
    title="ResNet-50 (ImageNet) truncated after layer 3, average pooled",
    architecture="resnet50",
    kwargs={"num_classes": 1000},
    input=InputRecipe(resize=224, crop=224, interpolation="bilinear"),
    tokens="head",
    feature_dim=1024,
    licence="BSD-3-Clause (torchvision weights)",
    card="https://huggingface.co/timm/resnet50.tv_in1k",
    hf_repo="timm/resnet50.tv_in1k",
    truncate_after="layer3",
)

RECIPES = (DINOV2_S, DINOV2_B, DINOV2_L, RESNET50_TRUNC)
