"""The Keras model runs in its own spawned process; TensorFlow never enters the caller's.

Measured with tensorflow-cpu 2.21 and torch 2.14 (triton 3.x) on Linux: importing TensorFlow
first and then triton (which ``torchvision``/``timm`` pull in through ``torch._dynamo``) ends
the process with a segmentation fault; the other order works. A benchmark process imports
PyTorch models whenever it likes, so instead of depending on import order the Keras model lives
in a worker process that imports TensorFlow and never torch. Tiles travel as uint8 NHWC arrays
(a 4-tile batch at 224 px is 0.6 MB) and features come back as float32.

Errors raised in the worker reach the caller as histobench errors (one line): a TensorFlow
exception object is never sent back, since unpickling it would import TensorFlow here.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any

import numpy as np

from histobench.plugins.errors import DataError, HistobenchError, PluginError

if TYPE_CHECKING:
    from histobench.extractors.keras.extractor import KerasRecipe

# -- inside the worker -----------------------------------------------------------------------

_model: dict[str, Any] = {}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0][:200]}" if text else type(exc).__name__


def _build(recipe: KerasRecipe, device: str) -> dict[str, Any]:
    """Build the model once; what the caller needs to know about it."""
    from histobench.extractors.keras.build import build_features_model
    from histobench.extractors.keras.models import application
    from histobench.extractors.keras.runtime import tensorflow, tf_device

    try:
        tf, keras = tensorflow()
        model, scale = build_features_model(recipe, device)
        _model.update(model=model, scale=scale, device=tf_device(device))
        name = application(recipe.name)[0] if recipe.kind == "application" else recipe.name
        return {
            "model": name,
            "feature_dim": int(model.output_shape[-1]),
            "input_shape": [None if d is None else int(d) for d in model.input_shape[1:]],
            "device": "cpu" if tf_device(device) == "/CPU:0" else device,
            "keras": keras.__version__,
            "tensorflow": tf.__version__,
        }
    except HistobenchError:
        raise
    except Exception as exc:  # anything TensorFlow raises, as one line of plain text
        raise PluginError(f"cannot build the Keras model: {_first_line(exc)}") from None


def _embed(tiles: np.ndarray) -> np.ndarray:
    """uint8 NHWC tiles → float32 features (the application's scaling, then predict)."""
    import tensorflow as tf

    model, scale = _model["model"], _model["scale"]
    try:
        with tf.device(_model["device"]):
            out = model.predict_on_batch(scale(tiles.astype(np.float32)))
    except Exception as exc:
        raise DataError(
            f"cannot embed tiles of {tiles.shape[1]}×{tiles.shape[2]} px: {_first_line(exc)}; "
            "set --option input_size=N"
        ) from None
    return np.asarray(out, dtype=np.float32).reshape(len(tiles), -1)


# -- in the caller ---------------------------------------------------------------------------


class KerasWorker:
    """One spawned process holding one Keras model."""

    def __init__(self, recipe: KerasRecipe, device: str) -> None:
        # A forked child (a data-loader worker) inherits this object but must not close it.
        self._owner = os.getpid()
        self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"))
        self.info: dict[str, Any] = self._call(_build, recipe, device)

    def _call(self, fn: Any, *args: Any) -> Any:
        try:
            return self._pool.submit(fn, *args).result()
        except BrokenProcessPool as exc:
            self.close()
            raise PluginError(
                "the Keras worker process died (out of memory, or TensorFlow crashed)"
            ) from exc

    def embed(self, tiles: np.ndarray) -> np.ndarray:
        return self._call(_embed, tiles)  # type: ignore[no-any-return]

    def close(self) -> None:
        if os.getpid() == self._owner:
            self._pool.shutdown(wait=False, cancel_futures=True)
