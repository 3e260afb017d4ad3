"""CTransPath (Wang et al., Medical Image Analysis 2022), rebuilt on timm 1's Swin Transformer.

Code and card: https://github.com/Xiyue-Wang/TransPath (``ctran.py`` and
``get_features_CTransPath.py``). The network is timm's ``swin_tiny_patch4_window7_224`` whose 4x4
patchify is replaced by a convolutional stem (``ConvStem`` below, the same layers as ``ctran.py``),
the classifier removed: the embedding is the average of the final, layer-normed tokens (768).
The published ``ctranspath.pth`` is a torch pickle whose ``model`` entry was saved by a modified
timm 0.5.4 (``timm_ctp``); its key names are mapped to timm 1's (``keymap.py``:
``timm-0.5-swin``). The feature script's transform: Resize(224) (bilinear), ToTensor, ImageNet
mean/std.
"""

from __future__ import annotations

from typing import Any

import torch
from timm.layers import to_2tuple
from torch import nn

from histobench.extractors.foundation.recipe import InputRecipe, Recipe


class ConvStem(nn.Module):
    """CTransPath's patch embedding: two 3x3 stride-2 convolutions (batch norm, ReLU) and a 1x1
    projection to ``embed_dim`` in place of Swin's 4x4 patchify, then the layer norm. Tokens come
    out channels-last, (B, H/4, W/4, C), as timm 1's Swin takes them (timm 0.5 flattened them to
    (B, H*W/16, C): the same values in the same order)."""

    def __init__(
        self,
        img_size: int | tuple[int, int] = 224,
        patch_size: int = 4,
        in_chans: int = 3,
        embed_dim: int = 96,
        norm_layer: type[nn.Module] | None = None,
        strict_img_size: bool = True,
        output_fmt: str = "NHWC",
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if to_2tuple(patch_size) != (4, 4) or embed_dim % 8 or output_fmt != "NHWC":
            raise ValueError("ConvStem: patch size 4, embed_dim a multiple of 8, NHWC output")
        dd: dict[str, Any] = {"device": device, "dtype": dtype}
        self.img_size: tuple[int, int] = to_2tuple(img_size)
        self.patch_size = (4, 4)
        self.grid_size = (self.img_size[0] // 4, self.img_size[1] // 4)
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.strict_img_size = strict_img_size
        width = embed_dim // 8
        # Indices 0..6 are the checkpoint's names (patch_embed.proj.0 ... patch_embed.proj.6).
        self.proj = nn.Sequential(
            nn.Conv2d(in_chans, width, 3, stride=2, padding=1, bias=False, **dd),
            nn.BatchNorm2d(width, **dd),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, bias=False, **dd),
            nn.BatchNorm2d(2 * width, **dd),
            nn.ReLU(inplace=True),
            nn.Conv2d(2 * width, embed_dim, 1, **dd),
        )
        self.norm = norm_layer(embed_dim, **dd) if norm_layer else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.strict_img_size and tuple(x.shape[-2:]) != self.img_size:
            raise ValueError(f"ConvStem: input {tuple(x.shape[-2:])}, expected {self.img_size}")
        return self.norm(self.proj(x).permute(0, 2, 3, 1))


CTRANSPATH = Recipe(
    name="ctranspath",
    title="CTransPath (Swin-T with a convolutional stem, SRCL on TCGA + PAIP)",
    architecture="swin_tiny_patch4_window7_224",
    kwargs={"img_size": 224, "num_classes": 0, "embed_layer": ConvStem},
    input=InputRecipe(resize=224, crop=224, interpolation="bilinear"),
    tokens="head",
    feature_dim=768,
    licence="GPL-3.0 (TransPath code repository; the weights state no separate licence)",
    card="https://github.com/Xiyue-Wang/TransPath",
    key_layout="timm-0.5-swin",
    unverified=(
        "key names and shapes were checked against timm_ctp 0.5.4 (the modified timm the card "
        "asks for) building ctran.py, not against the released ctranspath.pth itself",
        "that ctranspath.pth unpickles with weights_only=True (TRIDENT loads CHIEF's CTransPath "
        "file, same layout, that way); if it holds other objects the load is refused",
        "the feature script resizes without a centre crop (square tiles); other shapes are "
        "centre-cropped here",
    ),
)

RECIPES = (CTRANSPATH,)
