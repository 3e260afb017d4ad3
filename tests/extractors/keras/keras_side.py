"""Test fixtures made by Keras itself, run in a spawned process that never imports torch
(TensorFlow then triton in one process crashes; see histobench.extractors.keras.worker).

The reference features here come from plain Keras (``keras.applications.Xception``, its
``preprocess_input``, ``predict``), not from histobench's code, so they can judge it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np


def _keras():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ["KERAS_BACKEND"] = "tensorflow"
    import keras

    return keras


def random_xception(calibration: np.ndarray, seed: int = 0):
    """Keras Xception with random kernels, random batch-norm scales and shifts, and batch-norm
    statistics measured on ``calibration`` (preprocessed images). Fresh statistics (0 and 1)
    do not match a random network's activations: its deep feature maps then collapse to
    constants and a test could not tell a right mapping (kernel orientation, pooling) from a
    wrong one. Measured statistics keep every layer's output varying over space."""
    keras = _keras()
    keras.utils.set_random_seed(seed)
    model = keras.applications.Xception(
        include_top=False, weights=None, input_shape=(None, None, 3), pooling="avg"
    )
    rng = np.random.default_rng(seed)
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    for layer in norms:
        gamma, beta, mean, variance = layer.get_weights()
        gamma = rng.uniform(0.5, 1.5, gamma.shape).astype("float32")
        beta = rng.normal(0.0, 0.1, beta.shape).astype("float32")
        layer.set_weights([gamma, beta, mean, variance])
        layer.momentum = 0.0  # one training-mode call stores this batch's statistics
    model(calibration, training=True)
    for layer in norms:
        layer.momentum = 0.99
    return model


def write_keras2_weights(model, path: Path) -> None:
    """The legacy Keras 2 layout of the study's file, written with h5py: root ``layer_names``,
    per layer ``weight_names`` like ``block1_conv1/kernel:0``, unnamed layers numbered from
    ``_1`` as Keras 2 did (``conv2d_1``…)."""
    import h5py

    counters: dict[str, int] = {}
    names = []
    for layer in model.layers:
        match = re.fullmatch(r"(conv2d|batch_normalization)(_\d+)?", layer.name)
        if match:  # Keras 2 numbered a session's unnamed layers from 1
            counters[match[1]] = counters.get(match[1], 0) + 1
            names.append(f"{match[1]}_{counters[match[1]]}")
        else:
            names.append(layer.name)
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([n.encode() for n in names])
        f.attrs["backend"] = b"tensorflow"
        f.attrs["keras_version"] = b"2.1.5"
        for name, layer in zip(names, model.layers, strict=True):
            group = f.create_group(name)
            weight_names = [f"{name}/{v.path.split('/')[-1]}:0" for v in layer.weights]
            group.attrs["weight_names"] = np.array([w.encode() for w in weight_names])
            for weight_name, value in zip(weight_names, layer.get_weights(), strict=True):
                group.create_dataset(weight_name, data=value)


def read_tiles(paths: list[str], size: int | None = None) -> np.ndarray:
    from PIL import Image

    images = [Image.open(p).convert("RGB") for p in paths]
    if size:
        images = [im.resize((size, size), Image.Resampling.BILINEAR) for im in images]
    return np.stack([np.asarray(im, dtype=np.float32) for im in images])


def make_xception_fixtures(out: str, tile_paths: list[str]) -> dict[str, str]:
    """Random Keras Xception → weight files in both layouts, a whole-model file, and plain
    Keras features of the tiles (the reference)."""
    keras = _keras()
    folder = Path(out)
    pixels = read_tiles(tile_paths)
    inputs = keras.applications.xception.preprocess_input(pixels.copy())
    model = random_xception(inputs)
    files = {
        "keras2_weights": folder / "xception_keras2_notop.h5",
        "model_h5": folder / "xception_model.h5",
        "reference": folder / "reference_features.npy",
    }
    write_keras2_weights(model, files["keras2_weights"])
    model.save(files["model_h5"])  # Keras' legacy whole-model HDF5 (``model_weights`` group)
    features = model.predict_on_batch(inputs)
    np.save(files["reference"], np.asarray(features, dtype=np.float32))
    return {**{k: str(v) for k, v in files.items()}, "pool_layer": model.layers[-1].name}


def make_small_models(out: str) -> dict[str, str]:
    """A tiny conv net saved whole (.keras and .h5), and the same with a Lambda layer."""
    keras = _keras()
    keras.utils.set_random_seed(1)
    folder = Path(out)
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 255.0, name="scale")(inputs)
    x = keras.layers.Conv2D(8, 3, activation="relu", name="conv_a")(x)
    x = keras.layers.Conv2D(16, 3, activation="relu", name="conv_b")(x)
    pooled = keras.layers.GlobalAveragePooling2D(name="gap")(x)
    head = keras.layers.Dense(4, name="head")(pooled)
    plain = keras.Model(inputs, head)
    doubled = keras.layers.Lambda(lambda t: t * 2.0, name="double")(pooled)
    with_lambda = keras.Model(inputs, doubled)
    files = {
        "plain_keras": folder / "small.keras",
        "plain_h5": folder / "small.h5",
        "lambda_keras": folder / "small_lambda.keras",
        "lambda_h5": folder / "small_lambda.h5",
    }
    plain.save(files["plain_keras"])
    plain.save(files["plain_h5"])
    with_lambda.save(files["lambda_keras"])
    with_lambda.save(files["lambda_h5"])
    return {k: str(v) for k, v in files.items()}
