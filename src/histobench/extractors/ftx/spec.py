"""The ``ftx`` extractor spec and its options, listed without importing torch or timm (every
``bench`` command builds its parser from the registered specs); the factory imports the model
code when it runs."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from histobench.plugins.specs import Extractor, ExtractorSpec, PluginOptions, Runtime


class FTXOptions(PluginOptions):
    weights: Path | None = Field(
        None, description="A 'bench finetune' output folder (or its weights.safetensors)."
    )
    name: str = Field(
        "ftx", description="Without weights: the folder HISTOBENCH_HOME/weights/<name>/."
    )
    classes: list[str] | None = Field(
        None, description="Expected class names; the weights must have been trained on them."
    )


def _build(options: FTXOptions, runtime: Runtime) -> Extractor:
    from histobench.extractors.ftx.extractor import build_ftx

    return build_ftx(options, runtime)


FTX_SPEC = ExtractorSpec(
    name="ftx",
    description="FTX-2048: a backbone fine-tuned with 'bench finetune'; Part B's last hidden "
    "layer (2048 features).",
    factory=_build,
    options_model=FTXOptions,
    feature_dim=None,  # the card's hidden_dim: 2048 for the study's recipe
)
