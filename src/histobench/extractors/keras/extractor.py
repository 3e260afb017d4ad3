"""The Keras extractors: ``keras:<Application>`` and ``keras-model`` (features of a named layer).

Tiles are resized only when ``input_size`` differs from the tile (by default they go in at
their own size, as in the study); the pixel scaling is the application's own
``preprocess_input``, applied to each batch on the model side. The extractor is picklable (the
model is rebuilt from its recipe in a model process), so slide runs with model processes work.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from histobench.plugins.errors import ConfigError, WeightsError
from histobench.plugins.specs import Extractor, PluginOptions, Runtime, digest

Resample = Literal["bilinear", "bicubic", "nearest"]


class KerasInputOptions(PluginOptions):
    input_size: int | None = Field(
        None,
        ge=32,
        le=2048,
        description="Resize tiles to this size (default: tiles go in at their own size).",
    )
    resample: Resample = Field("bilinear", description="Interpolation when resizing.")


class KerasApplicationOptions(KerasInputOptions):
    application: str = Field(description="A keras.applications model (given as keras:<Name>).")
    weights: Path | None = Field(
        None,
        description="Keras weights file (.h5 legacy layout such as "
        "xception_weights_tf_dim_ordering_tf_kernels_notop.h5, or a Keras 3 .weights.h5).",
    )
    random_weights: bool = Field(
        False, description="Use Keras' seeded random initialisation (tests, floors); never implied."
    )


class KerasModelOptions(KerasInputOptions):
    weights: Path | None = Field(None, description="A whole Keras model file (.keras or .h5).")
    layer: str | None = Field(None, description="Layer whose output is the feature vector.")
    pooling: Literal["avg", "max"] = Field(
        "avg", description="How a spatial (or token) layer output becomes one vector."
    )
    preprocess: str = Field(
        "tf",
        description="Pixel scaling: tf (x/127.5-1), caffe, torch, none (0..255), or a "
        "keras.applications name whose preprocess_input to use (e.g. ResNet50).",
    )
    allow_unsafe_lambda: bool = Field(
        False, description="Run Python code stored in Lambda layers (only for trusted files)."
    )


@dataclass(frozen=True)
class KerasRecipe:
    """Everything needed to rebuild the Keras model (in this or a model process)."""

    kind: Literal["application", "model"]
    name: str  # the application's canonical name, or "keras-model"
    weights: str | None
    weights_digest: str
    seed: int | None = None  # random weights: Keras' initialisers under this seed
    input_size: int | None = None
    resample: Resample = "bilinear"
    layer: str | None = None
    pooling: str = "avg"
    preprocess: str = "tf"
    allow_unsafe_lambda: bool = False


class KerasExtractor(Extractor):
    """A Keras model behind histobench's extractor interface (float32, batched predict).

    The model lives in a worker process (``worker.KerasWorker``); this object holds only its
    recipe, so it pickles cheaply and a model process rebuilds its own worker.
    """

    def __init__(self, label: str, recipe: KerasRecipe, runtime: Runtime) -> None:
        self.name = label
        self.recipe = recipe
        self._device = runtime.device
        self._worker: Any = None
        info = self._ensure_worker().info
        if recipe.kind == "application":  # the worker knows Keras' spelling: keras:Xception
            self.recipe = replace(recipe, name=info["model"])
            self.name = f"keras:{info['model']}"
        self.feature_dim = int(info["feature_dim"])
        self._versions = {"keras": info["keras"], "tensorflow": info["tensorflow"]}
        self._fixed_size = recipe.input_size or _fixed_size(info["input_shape"])

    def _ensure_worker(self) -> Any:
        if self._worker is None:
            from histobench.extractors.keras.worker import KerasWorker

            self._worker = KerasWorker(self.recipe, self._device)
        return self._worker

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_worker"] = None  # where this is unpickled, a worker starts on first use
        return state

    def __del__(self) -> None:
        worker = getattr(self, "_worker", None)
        if worker is not None:
            worker.close()

    def to_device(self, device: str) -> None:
        if device != self._device:
            if self._worker is not None:
                self._worker.close()
            self._device, self._worker = device, None

    @property
    def device(self) -> str:
        return str(self._ensure_worker().info["device"])

    def identity(self) -> dict[str, Any]:
        r = self.recipe
        return {
            "extractor": self.name,
            "keras_model": r.name,
            "weights_digest": r.weights_digest,
            "input_size": r.input_size or "tile",
            "resample": r.resample,
            "layer": r.layer,
            "pooling": r.pooling,
            "preprocess": r.preprocess,
            **self._versions,
        }

    def preprocess(self, image: Any) -> Any:
        """A tile → CHW uint8 tensor (resized only to a fixed input size; the application's
        own scaling runs on the model side)."""
        import torch
        from PIL import Image

        size = self._fixed_size
        if size and image.size != (size, size):
            method = {
                "bilinear": Image.Resampling.BILINEAR,
                "bicubic": Image.Resampling.BICUBIC,
                "nearest": Image.Resampling.NEAREST,
            }[self.recipe.resample]
            image = image.resize((size, size), method)
        array = np.asarray(image, dtype=np.uint8)
        return torch.from_numpy(array.transpose(2, 0, 1).copy())

    def embed(self, batch: Any) -> Any:
        import torch

        tiles = batch.permute(0, 2, 3, 1).contiguous().numpy()
        if tiles.dtype != np.uint8:  # another caller's float batch of 0..255 values
            tiles = np.clip(np.rint(tiles), 0, 255).astype(np.uint8)
        return torch.from_numpy(self._ensure_worker().embed(tiles))


def _fixed_size(input_shape: list[int | None]) -> int | None:
    """The model's own square input size, if it has one (tiles are resized to it)."""
    if len(input_shape) != 3 or input_shape[-1] != 3:
        raise ConfigError(f"the Keras model takes input {input_shape}: expected (H, W, 3) images")
    height, width = input_shape[0], input_shape[1]
    return height if height is not None and height == width else None


# -- factories -------------------------------------------------------------------------------


def _weights_digest(path: Path) -> str:
    from histobench.extractors.weights import file_digest

    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found")
    return file_digest(path)


def make_application(options: KerasApplicationOptions, runtime: Runtime) -> Extractor:
    from histobench.benchmark import home
    from histobench.extractors.keras.build import find_application_weights

    name = options.application
    base = KerasRecipe(
        "application",
        name,
        None,
        "",
        input_size=options.input_size,
        resample=options.resample,
        preprocess="application",
    )
    if options.random_weights:
        if options.weights is not None:
            raise ConfigError(f"keras:{name}: give either weights or random_weights=true")
        tag = digest(["keras-random", name.lower(), runtime.seed])
        recipe = replace(base, weights_digest=tag, seed=runtime.seed)
    else:
        path = options.weights or find_application_weights(name, home.weights_dir())
        recipe = replace(base, weights=str(path), weights_digest=_weights_digest(path))
    return KerasExtractor(f"keras:{name}", recipe, runtime)


def make_model(options: KerasModelOptions, runtime: Runtime) -> Extractor:
    if options.weights is None:
        raise ConfigError("keras-model needs the model file: --weights MODEL.keras|MODEL.h5")
    recipe = KerasRecipe(
        "model",
        "keras-model",
        str(options.weights),
        _weights_digest(options.weights),
        input_size=options.input_size,
        resample=options.resample,
        layer=options.layer,
        pooling=options.pooling,
        preprocess=options.preprocess,
        allow_unsafe_lambda=options.allow_unsafe_lambda,
    )
    return KerasExtractor("keras-model", recipe, runtime)
