"""Recipe → a Keras model whose output is the feature vector, and its pixel scaling."""

from __future__ import annotations

import random
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from histobench.extractors.keras.models import (
    application,
    build_application,
    layer_model,
    load_application_weights,
    load_model_file,
)
from histobench.extractors.keras.runtime import tensorflow, tf_device
from histobench.plugins.errors import ConfigError, WeightsError

if TYPE_CHECKING:
    from collections.abc import Iterator

    from histobench.extractors.keras.extractor import KerasRecipe

Scale = Callable[[np.ndarray], np.ndarray]


@contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Keras' initialisers under ``seed``, without leaving the global numpy/random state
    changed for the rest of the run."""
    _, keras = tensorflow()
    py_state, np_state = random.getstate(), np.random.get_state()
    keras.utils.set_random_seed(seed)
    try:
        yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


def build_features_model(recipe: KerasRecipe, device: str) -> tuple[Any, Scale]:
    tf, _ = tensorflow()
    with tf.device(tf_device(device)):
        if recipe.kind == "application":
            return _application_model(recipe), application(recipe.name)[2]
        return _file_model(recipe), _scaling(recipe.preprocess)


def _application_model(recipe: KerasRecipe) -> Any:
    label = f"keras:{recipe.name}"
    if recipe.seed is not None:
        with _seeded(recipe.seed):
            return build_application(recipe.name, recipe.input_size)
    model = build_application(recipe.name, recipe.input_size)
    assert recipe.weights is not None
    load_application_weights(model, Path(recipe.weights), label)
    return model


def _file_model(recipe: KerasRecipe) -> Any:
    _, keras = tensorflow()
    assert recipe.weights is not None
    path = Path(recipe.weights)
    model = layer_model(load_model_file(path, recipe.allow_unsafe_lambda), recipe.layer, path)
    rank = len(model.output_shape)
    pools = {
        (4, "avg"): keras.layers.GlobalAveragePooling2D,
        (4, "max"): keras.layers.GlobalMaxPooling2D,
        (3, "avg"): keras.layers.GlobalAveragePooling1D,
        (3, "max"): keras.layers.GlobalMaxPooling1D,
    }
    if rank == 2:
        return model
    if (rank, recipe.pooling) not in pools:
        raise ConfigError(
            f"{path}: layer '{recipe.layer}' gives outputs of shape {model.output_shape}; "
            "expected (N, D), (N, T, D) or (N, H, W, C)"
        )
    pooled = pools[(rank, recipe.pooling)](name="histobench_pool")(model.output)
    return keras.Model(model.inputs, pooled)


def _scaling(mode: str) -> Scale:
    if mode == "none":
        return lambda x: x
    if mode in {"tf", "caffe", "torch"}:
        from keras.applications import imagenet_utils

        return lambda x: imagenet_utils.preprocess_input(x, mode=mode)
    return application(mode)[2]


def _keras_cache() -> Path:
    import os

    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "models"


def find_application_weights(name: str, weights_dir: Path) -> Path:
    """``HISTOBENCH_HOME/weights/keras_<Name>/*.h5``, then Keras' own download cache
    (``~/.keras/models/<name>…notop.h5``); never a download."""
    folder = weights_dir / f"keras_{name}"
    folders = [p for p in weights_dir.glob("keras_*") if p.name.lower() == folder.name.lower()]
    for candidate in sorted(folders):
        found = sorted(candidate.glob("*.h5"))
        if found:
            return found[0]
    wanted = (f"{name.lower()}weights", f"{name.lower()}notop")
    cache = _keras_cache()
    for path in sorted(cache.glob("*notop*.h5")) if cache.is_dir() else []:
        if path.name.replace("_", "").lower().startswith(wanted):
            return path
    raise WeightsError(
        f"no weights for keras:{name}: pass --weights FILE.h5 (the Keras 'notop' ImageNet file, "
        f"e.g. xception_weights_tf_dim_ordering_tf_kernels_notop.h5), put it in {folder}/ or "
        f"{cache}/, or set --option random_weights=true for an explicitly random model"
    )
