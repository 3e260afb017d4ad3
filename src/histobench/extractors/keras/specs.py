"""The Keras extractor specs (TensorFlow is imported only when a factory runs)."""

from __future__ import annotations

from typing import Any

from histobench.extractors.keras.extractor import (
    KerasApplicationOptions,
    KerasModelOptions,
    make_application,
    make_model,
)
from histobench.plugins.specs import ExtractorSpec

KERAS_SPECS: list[ExtractorSpec[Any]] = [
    ExtractorSpec(
        name="keras",
        description="Any keras.applications model, GAP features: keras:<Name> (e.g. "
        "keras:Xception), Keras weights file; needs histobench[keras].",
        factory=make_application,
        options_model=KerasApplicationOptions,
        prefix=True,
        suffix_field="application",
    ),
    ExtractorSpec(
        name="keras-model",
        description="Features of a named layer of a whole Keras model file (--weights "
        "MODEL.keras|.h5, --layer NAME); needs histobench[keras].",
        factory=make_model,
        options_model=KerasModelOptions,
    ),
]
