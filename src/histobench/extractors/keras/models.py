"""Keras models for feature extraction: applications by name, and user model files, loaded safely.

* ``keras:<Application>``: any ``keras.applications`` model, headless, global-average pooled.
  Weights: a legacy-layout ``.h5`` (the study's Keras 2 files) is assigned layer by layer by
  name, read with h5py (``h5weights``); a Keras 3 ``.weights.h5`` goes through Keras' own loader.
* ``keras-model``: a whole model file (``.keras`` or ``.h5``) through ``keras.models.load_model``
  with ``safe_mode=True`` (a Lambda layer's Python code is refused unless the user allows it),
  features taken from a named layer.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from histobench.extractors.keras.h5weights import KerasWeights, nearest, read_keras_h5
from histobench.extractors.keras.runtime import tensorflow
from histobench.plugins.errors import ConfigError, WeightsError


def snake_case(class_name: str) -> str:
    """Keras' automatic layer-name base: ``Conv2D`` → ``conv2d``,
    ``BatchNormalization`` → ``batch_normalization`` (keras.src.utils.naming.to_snake_case)."""
    intermediate = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", class_name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", intermediate).lower()


def application(name: str) -> tuple[str, Callable[..., Any], Callable[[np.ndarray], np.ndarray]]:
    """(canonical name, constructor, that application's ``preprocess_input``)."""
    _, keras = tensorflow()
    known = {n.lower(): n for n in dir(keras.applications) if n[:1].isupper()}
    canonical = known.get(name.lower())
    if canonical is None:
        raise ConfigError(
            f"keras:{name}: not a keras.applications model (nearest: "
            f"{nearest(name, sorted(known.values()))})"
        )
    constructor = getattr(keras.applications, canonical)
    module = importlib.import_module(constructor.__module__)
    return canonical, constructor, module.preprocess_input


def build_application(name: str, input_size: int | None) -> Any:
    """The headless application with global average pooling, random (Keras) initial weights."""
    canonical, constructor, _ = application(name)
    shape = (input_size, input_size, 3) if input_size else (None, None, 3)
    try:
        return constructor(include_top=False, weights=None, input_shape=shape, pooling="avg")
    except ValueError as exc:
        raise ConfigError(
            f"keras:{canonical} cannot be built for input {shape[:2]}: {_first_line(exc)} "
            "(set --option input_size=N)"
        ) from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _is_keras3_weights(path: Path) -> bool:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return "layers" in f and "layer_names" not in f.attrs
    except Exception:  # unreadable: the legacy reader gives the one-line error
        return False


def load_application_weights(model: Any, path: Path, label: str) -> None:
    """Weights into an application: legacy ``.h5`` by layer name, Keras 3 files by Keras."""
    if path.suffix == ".keras":
        raise ConfigError(
            f"{path}: a whole Keras model file; use --extractor keras-model for it "
            f"({label} takes a weights file, .h5)"
        )
    if _is_keras3_weights(path):
        try:
            model.load_weights(str(path))
        except Exception as exc:
            raise WeightsError(f"{path}: does not fit {label}: {_first_line(exc)}") from exc
        return
    assign_by_name(model, read_keras_h5(path), label)


def _layer_arrays(layer: Any, arrays: dict[str, np.ndarray], path: Path) -> list[np.ndarray]:
    values = []
    for variable in layer.weights:
        short = variable.path.split("/")[-1]
        if short not in arrays:
            raise WeightsError(
                f"{path}: layer '{layer.name}' has no '{short}' (it holds {sorted(arrays)})"
            )
        value = arrays[short]
        if tuple(value.shape) != tuple(variable.shape):
            raise WeightsError(
                f"{path}: '{layer.name}/{short}' has shape {tuple(value.shape)}, the model "
                f"needs {tuple(variable.shape)}: weights of another architecture"
            )
        values.append(value)
    return values


def assign_by_name(model: Any, weights: KerasWeights, label: str) -> None:
    """Every layer with weights gets the file's layer of the same name; layers Keras named
    itself (``conv2d_3``) are matched in order among those of their kind. Layers the model
    lacks (a classifier top) are ignored; any layer the file lacks is an error."""
    layers = [layer for layer in model.layers if layer.weights]
    auto_queues: dict[str, list[str]] = {}
    plan: list[tuple[Any, str]] = []
    missing: list[str] = []
    for layer in layers:
        base = snake_case(type(layer).__name__)
        if re.fullmatch(rf"{re.escape(base)}(_\d+)?", layer.name):
            queue = auto_queues.setdefault(base, list(weights.auto_named(base)))
            source = queue.pop(0) if queue else None
        else:
            source = layer.name if layer.name in weights.layers else None
        if source is None:
            missing.append(layer.name)
        else:
            plan.append((layer, source))
    if missing:
        raise WeightsError(
            f"{weights.path}: does not fit {label}: {len(missing)} of its {len(layers)} layers "
            f"with weights are not in the file, e.g. '{missing[0]}' (the file has: "
            f"{nearest(missing[0], weights.layers)})"
        )
    for layer, source in plan:
        layer.set_weights(_layer_arrays(layer, weights.layers[source], weights.path))


def load_model_file(path: Path, allow_unsafe_lambda: bool) -> Any:
    """A whole Keras model (``.keras`` or ``.h5``), loaded with ``safe_mode`` unless allowed."""
    _, keras = tensorflow()
    if not path.is_file():
        raise WeightsError(f"{path}: model file not found")
    if path.suffix not in {".keras", ".h5", ".hdf5"}:
        raise ConfigError(f"{path}: expected a Keras model file (.keras or .h5)")
    try:
        return keras.models.load_model(str(path), compile=False, safe_mode=not allow_unsafe_lambda)
    except Exception as exc:
        detail = _first_line(exc)
        if "safe_mode" in str(exc):
            detail = (
                "it holds a Lambda layer with Python code, refused by safe mode; if you trust "
                "the file, set --option allow_unsafe_lambda=true"
            )
        raise WeightsError(f"{path}: cannot load the Keras model: {detail}") from exc


def layer_model(model: Any, layer_name: str | None, path: Path) -> Any:
    """A model from the full model's inputs to the named layer's output (or its own output)."""
    _, keras = tensorflow()
    if layer_name is None:
        return model
    names = [layer.name for layer in model.layers]
    if layer_name not in names:
        inside = [
            layer.name
            for layer in model.layers
            if hasattr(layer, "layers") and layer_name in [sub.name for sub in layer.layers]
        ]
        where = f"; it is inside the nested model '{inside[0]}'" if inside else ""
        raise ConfigError(
            f"{path}: no layer '{layer_name}'{where} (nearest: {nearest(layer_name, names)})"
        )
    return keras.Model(model.inputs, model.get_layer(layer_name).output)
