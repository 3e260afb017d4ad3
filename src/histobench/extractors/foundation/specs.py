"""The foundation-model extractor specs, listed without importing torch or timm.

Every ``bench`` command builds its parser from the registered extractors, so listing them must
stay cheap: the recipes themselves (:mod:`.registry`) import timm's layers, ~10 s on a cold
start. ``CATALOG`` repeats each recipe's name, title, feature dimension and licence (a test keeps
it equal to the recipe table); the factory imports the recipe and the model code when it runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field

from histobench.plugins.specs import ExtractorSpec, PluginOptions, Runtime

if TYPE_CHECKING:
    from histobench.plugins.specs import Extractor

# (name, title, feature dimension, licence) of every recipe in registry.RECIPES, in its order.
CATALOG: tuple[tuple[str, str, int, str], ...] = (
    (
        "uni",
        "UNI (ViT-L/16, DINOv2-trained on Mass-100K)",
        1024,
        "CC-BY-NC-ND 4.0, gated (academic research; accept terms on Hugging Face)",
    ),
    (
        "uni2-h",
        "UNI2-h (ViT-H/14, 8 register tokens, SwiGLU)",
        1536,
        "CC-BY-NC-ND 4.0, gated (academic research; accept terms on Hugging Face)",
    ),
    (
        "virchow",
        "Virchow (ViT-H/14, SwiGLU)",
        2560,
        "CC-BY-NC-ND 4.0, gated (non-commercial research; accept terms on Hugging Face)",
    ),
    (
        "virchow2",
        "Virchow2 (ViT-H/14, 4 register tokens, SwiGLU)",
        2560,
        "CC-BY-NC-ND 4.0, gated (non-commercial research; accept terms on Hugging Face)",
    ),
    ("h-optimus-0", "H-optimus-0 (ViT-g/14, 4 register tokens)", 1536, "Apache-2.0"),
    (
        "h-optimus-1",
        "H-optimus-1 (ViT-g/14, 4 register tokens)",
        1536,
        "gated, academic research only (Bioptimus licence)",
    ),
    (
        "h0-mini",
        "H0-mini (ViT-B/14 distilled from H-optimus-0, 4 register tokens, SwiGLU)",
        1536,
        "CC-BY-NC-ND 4.0, gated",
    ),
    ("phikon", "Phikon (ViT-B/16, iBOT on TCGA)", 768, "Owkin non-commercial licence"),
    (
        "phikon-v2",
        "Phikon-v2 (ViT-L/16, DINOv2 on PANCAN-XL)",
        1024,
        "Owkin non-commercial licence",
    ),
    (
        "prov-gigapath",
        "Prov-GigaPath tile encoder (ViT-g/16, SwiGLU)",
        1536,
        "Apache-2.0, gated (accept terms on Hugging Face)",
    ),
    ("kaiko-vits16", "Kaiko ViT-S/16", 384, "kaiko.ai (see the model card)"),
    ("kaiko-vitb16", "Kaiko ViT-B/16", 768, "kaiko.ai (see the model card)"),
    ("kaiko-vitl14", "Kaiko ViT-L/14 (4 registers)", 1024, "kaiko.ai (see the model card)"),
    ("midnight", "Midnight-12k (ViT-g/14, DINOv2)", 3072, "MIT"),
    (
        "hibou-b",
        "Hibou-B (ViT-B/14, 4 registers, SwiGLU)",
        768,
        "Apache-2.0 (repository README and paper)",
    ),
    (
        "hibou-l",
        "Hibou-L (ViT-L/14, 4 registers, SwiGLU)",
        1024,
        "see the card (Hibou-B is Apache-2.0)",
    ),
    (
        "ctranspath",
        "CTransPath (Swin-T with a convolutional stem, SRCL on TCGA + PAIP)",
        768,
        "GPL-3.0 (TransPath code repository; the weights state no separate licence)",
    ),
    ("dinov2-vits14", "DINOv2 ViT-S/14 (ImageNet baseline, LVD-142M)", 384, "Apache-2.0"),
    ("dinov2-vitb14", "DINOv2 ViT-B/14 (ImageNet baseline, LVD-142M)", 768, "Apache-2.0"),
    ("dinov2-vitl14", "DINOv2 ViT-L/14 (ImageNet baseline, LVD-142M)", 1024, "Apache-2.0"),
    (
        "resnet50-trunc",
        "ResNet-50 (ImageNet) truncated after layer 3, average pooled",
        1024,
        "BSD-3-Clause (torchvision weights)",
    ),
)


class FoundationOptions(PluginOptions):
    weights: Path | None = Field(
        None,
        description="A weights file (.safetensors, or .bin/.pth read with weights_only) or a "
        "Hugging Face snapshot folder; default: HISTOBENCH_HOME/weights/<name>/, weights.toml, "
        "or the Hugging Face cache.",
    )
    compile: bool = Field(False, description="torch.compile the model (GPU runs).")


def _factory(name: str):  # type: ignore[no-untyped-def]
    def make(options: FoundationOptions, runtime: Runtime) -> Extractor:
        from histobench.extractors.foundation.extractor import FoundationExtractor
        from histobench.extractors.foundation.registry import recipe

        return FoundationExtractor(recipe(name), options, runtime)

    return make


FOUNDATION_SPECS: list[ExtractorSpec[Any]] = [
    ExtractorSpec(
        name=name,
        description=f"{title}; {dim} features; local weights ({licence}).",
        factory=_factory(name),
        options_model=FoundationOptions,
        feature_dim=dim,
    )
    for name, title, dim, licence in CATALOG
]
