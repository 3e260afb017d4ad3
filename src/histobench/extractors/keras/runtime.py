"""TensorFlow on demand: imported only when a Keras extractor is built, configured once.

Quiet logs (the C++ and Python loggers), GPU memory growth on (TensorFlow would otherwise take
every GPU's memory at start-up and leave none to PyTorch in the same process), deterministic
ops. A missing TensorFlow is a one-line error naming the extra to install.
"""

from __future__ import annotations

import contextlib
import os
from functools import lru_cache
from typing import Any

from histobench.plugins.errors import PluginError

INSTALL_HINT = 'pip install "histobench[keras]"'


@lru_cache(maxsize=1)
def tensorflow() -> tuple[Any, Any]:
    """``(tensorflow, keras)``, imported and configured on first use."""
    # Must be set before the import: TensorFlow reads them once.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    try:
        import tensorflow as tf
    except ImportError as exc:
        raise PluginError(
            f"the Keras extractors need TensorFlow, which is not installed: {INSTALL_HINT}"
        ) from exc
    import keras

    if keras.backend.backend() != "tensorflow":
        raise PluginError(
            f"Keras runs on the '{keras.backend.backend()}' backend (KERAS_BACKEND); the Keras "
            "extractors need the TensorFlow backend: unset KERAS_BACKEND"
        )
    _quiet(tf)
    for gpu in tf.config.list_physical_devices("GPU"):
        # RuntimeError: the GPU was initialised already; it keeps its setting.
        with contextlib.suppress(RuntimeError):
            tf.config.experimental.set_memory_growth(gpu, True)
    # Same input, same features: no non-deterministic kernels (CPU and GPU).
    tf.config.experimental.enable_op_determinism()
    return tf, keras


def _quiet(tf: Any) -> None:
    import logging

    tf.get_logger().setLevel(logging.ERROR)
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:
        pass


def tf_device(requested: str) -> str:
    """The TensorFlow device for a histobench device: ``cuda:N`` → ``/GPU:N`` where
    TensorFlow sees that GPU (tensorflow-cpu sees none), else ``/CPU:0``."""
    tf, _ = tensorflow()
    if requested.startswith("cuda"):
        index = int(requested.partition(":")[2] or 0)
        if index < len(tf.config.list_physical_devices("GPU")):
            return f"/GPU:{index}"
    return "/CPU:0"
