"""The plugin API: everything a plugin author imports, from this one module.

    from histobench.plugins import hookimpl, ExtractorSpec, PluginOptions, TorchExtractor, ...

Hooks are declared in ``histobench.plugins.hookspecs``; specs, base classes and data types in
``specs``, ``labels`` and ``commands``; the errors that reach users as one line in ``errors``.
``TorchExtractor`` and ``Preprocessing`` (``histobench.plugins.torch``) import torch, so they are
loaded on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from histobench.plugins.commands import CommandSpec, DatasetFlags
from histobench.plugins.errors import (
    ConfigError,
    DataError,
    HistobenchError,
    PluginError,
    WeightsError,
)
from histobench.plugins.hookspecs import hookimpl
from histobench.plugins.labels import InMemoryLabels, LabelMatrix, PatientLabels
from histobench.plugins.specs import (
    Dataset,
    DatasetSpec,
    Embedder,
    ExtractionResult,
    Extractor,
    ExtractorSpec,
    Item,
    NoOptions,
    PluginOptions,
    Predictions,
    Runtime,
    SkippedItem,
    SplitPlan,
    TargetResult,
    Task,
    TaskResult,
    TaskSpec,
    Units,
    digest,
)

if TYPE_CHECKING:
    from histobench.plugins.torch import Preprocessing, TorchExtractor

__all__ = [
    "CommandSpec",
    "ConfigError",
    "DataError",
    "DatasetFlags",
    "Dataset",
    "DatasetSpec",
    "Embedder",
    "ExtractionResult",
    "Extractor",
    "ExtractorSpec",
    "HistobenchError",
    "InMemoryLabels",
    "Item",
    "LabelMatrix",
    "NoOptions",
    "PatientLabels",
    "PluginError",
    "PluginOptions",
    "Predictions",
    "Preprocessing",
    "Runtime",
    "SkippedItem",
    "SplitPlan",
    "TargetResult",
    "Task",
    "TaskResult",
    "TaskSpec",
    "TorchExtractor",
    "Units",
    "WeightsError",
    "digest",
    "hookimpl",
]

_TORCH_NAMES = {"Preprocessing", "TorchExtractor"}


def __getattr__(name: str) -> Any:
    # torch takes a second to import; `bench list` and the statistics need none of it.
    if name in _TORCH_NAMES:
        from histobench.plugins import torch as torch_api

        return getattr(torch_api, name)
    raise AttributeError(f"module 'histobench.plugins' has no attribute {name!r}")
