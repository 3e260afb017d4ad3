"""Built-in extractors: the embedded default, the study's IMGNET-2048, timm, random baseline."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from histobench.benchmark import home
from histobench.plugins.specs import Extractor, ExtractorSpec, PluginOptions, Runtime

if TYPE_CHECKING:
    from histobench.extractors.backbones import Backbone

# torch and timm are imported by the factories, not here: listing the plugins (every `bench`
# command builds its parser from them) must not pay for importing them.


class InputOptions(PluginOptions):
    input_size: int = Field(224, ge=32, le=1024, description="Tiles are resized to this size.")


class WeightsOptions(InputOptions):
    weights: Path | None = Field(
        None, description="A .safetensors or .pth weights file (loaded without unpickling)."
    )


class TimmOptions(WeightsOptions):
    model_name: str = Field(description="A timm model name (given as timm:<model-name>).")
    pooling: Literal["head", "cls", "mean", "cls+mean"] = Field(
        "head",
        description="Vision transformers: the class token, the mean of the patch tokens, or "
        "both concatenated; head (default): the backbone's pooled output as built.",
    )


class RandomInitOptions(InputOptions):
    backbone: str = Field(
        "effnet-lite0", description="effnet-lite0, xception or timm:<model-name>."
    )


def _wrap(name: str, backbone: Backbone, runtime: Runtime, **extra: Any) -> Extractor:
    from histobench.plugins.torch import TorchExtractor

    identity = {
        "extractor": name,
        "backbone": backbone.name,
        "weights_digest": backbone.weights_digest,
        **extra,  # e.g. the token pooling: part of the feature-cache key
    }
    return TorchExtractor(
        name, backbone.model, backbone.feature_dim, backbone.preprocessing, identity, runtime
    )


def _effnet(options: InputOptions, runtime: Runtime) -> Extractor:
    from histobench.extractors.backbones import build_backbone

    return _wrap(
        "effnet-lite0", build_backbone("effnet-lite0", input_size=options.input_size), runtime
    )


def _imgnet(options: WeightsOptions, runtime: Runtime) -> Extractor:
    from histobench.extractors.backbones import build_backbone

    backbone = build_backbone(
        "xception",
        weights=options.weights,
        weights_dir=home.weights_dir(),
        input_size=options.input_size,
    )
    # Weights converted from Keras (`bench convert keras-xception`) give the Keras model's
    # features only with Keras' max-pool padding; the file's metadata says so. Only here:
    # `bench finetune` trains and `ftx` evaluates with timm's own pooling, consistently.
    from histobench.extractors.keras.layout import apply_keras_layout

    apply_keras_layout(backbone.model, Path(backbone.weights_source))
    return _wrap("imgnet", backbone, runtime)


def _timm(options: TimmOptions, runtime: Runtime) -> Extractor:
    from histobench.extractors.backbones import Backbone, TokenPooling, build_backbone

    name = f"timm:{options.model_name}"
    backbone = build_backbone(
        name, weights=options.weights, weights_dir=home.weights_dir(), input_size=options.input_size
    )
    if options.pooling != "head":
        pooled = TokenPooling(backbone.model, options.pooling)
        dim = backbone.feature_dim * (2 if options.pooling == "cls+mean" else 1)
        backbone = Backbone(
            backbone.name, pooled, dim, backbone.preprocessing, backbone.weights_source,
            backbone.weights_digest,
        )  # fmt: skip
        return _wrap(name, backbone, runtime, pooling=options.pooling)
    return _wrap(name, backbone, runtime)


def _random(options: RandomInitOptions, runtime: Runtime) -> Extractor:
    from histobench.extractors.backbones import build_backbone

    backbone = build_backbone(
        options.backbone, pretrained=False, seed=runtime.seed, input_size=options.input_size
    )
    return _wrap("random-init", backbone, runtime)


SPECS: list[ExtractorSpec[Any]] = [
    ExtractorSpec(
        name="effnet-lite0",
        description="EfficientNet-Lite0, ImageNet weights embedded (1280 features); the default.",
        factory=_effnet,
        options_model=InputOptions,
        feature_dim=1280,
    ),
    ExtractorSpec(
        name="imgnet",
        description="IMGNET-2048: ImageNet Xception (timm legacy_xception), GAP, 2048 features.",
        factory=_imgnet,
        options_model=WeightsOptions,
        feature_dim=2048,
    ),
    ExtractorSpec(
        name="random-init",
        description="Randomly initialised backbone (seeded): a floor for comparisons.",
        factory=_random,
        options_model=RandomInitOptions,
    ),
    ExtractorSpec(
        name="timm",
        description="Any timm model with local weights: timm:<model-name>.",
        factory=_timm,
        options_model=TimmOptions,
        prefix=True,
        suffix_field="model_name",
    ),
]
