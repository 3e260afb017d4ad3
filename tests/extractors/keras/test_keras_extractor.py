"""keras:<Application> and keras-model: the features plain Keras computes, safe loading,
one-line errors; TensorFlow stays out of the benchmark process."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from tests.conftest import assert_one_line_error
from tests.extractors.keras.conftest import requires_tensorflow
from tests.extractors.keras.helpers import assert_relative, extract

pytestmark = [pytest.mark.slow, requires_tensorflow]


def test_keras_application_reads_the_study_layout(cli, tmp_path, xception_files, tile_folder):
    """keras:Xception with a Keras 2 layout weights file, assigned by layer name, tiles at
    their own size through Xception's preprocess_input: plain Keras' features."""
    got = extract(
        cli,
        tile_folder,
        tmp_path / "k.h5",
        "--extractor",
        "keras:xception",
        "--weights",
        xception_files["keras2_weights"],
    )
    assert_relative(got, np.load(xception_files["reference"]), 1e-6)
    assert "tensorflow" not in sys.modules  # the model ran in its worker process


@pytest.mark.parametrize("layer", ["pooled", "block14_sepconv2_act"])
def test_keras_model_features_of_a_named_layer(cli, tmp_path, xception_files, tile_folder, layer):
    """A whole model file; a pooled layer as is, a spatial layer global-average pooled."""
    if layer == "pooled":  # Keras numbers the unnamed pooling layer per session
        layer = xception_files["pool_layer"]
    got = extract(
        cli,
        tile_folder,
        tmp_path / "m.h5",
        "--extractor",
        "keras-model",
        "--weights",
        xception_files["model_h5"],
        "--option",
        f"layer={layer}",
        "--option",
        "preprocess=Xception",
    )
    assert_relative(got, np.load(xception_files["reference"]), 1e-5)


def test_bad_model_inputs_are_one_line(cli, tmp_path, xception_files, small_model_files):
    tiles = tmp_path / "tiles"
    from tests.conftest import write_textured_tiles

    write_textured_tiles(tiles, {"A": 1, "B": 1}, size=40)
    out = tmp_path / "f.h5"
    # A layer that does not exist: the error lists the nearest names.
    code, _, err = cli(
        "extract", "--extractor", "keras-model", "--weights", small_model_files["plain_h5"],
        "--option", "layer=conv_c", "--dataset", tiles, "--out", out,
    )  # fmt: skip
    assert code == 2
    assert_one_line_error(err, "no layer 'conv_c'", "conv_a", "conv_b")
    # Python code in a Lambda layer is refused (safe mode), in both file formats.
    for key in ("lambda_keras", "lambda_h5"):
        code, _, err = cli(
            "extract", "--extractor", "keras-model", "--weights", small_model_files[key],
            "--dataset", tiles, "--out", out,
        )  # fmt: skip
        assert code == 1
        assert_one_line_error(err, small_model_files[key].name, "allow_unsafe_lambda")
    assert not out.exists()
    # A truncated model file.
    cut = tmp_path / "cut.keras"
    data = small_model_files["plain_keras"].read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    code, _, err = cli(
        "extract", "--extractor", "keras-model", "--weights", cut, "--dataset", tiles,
        "--out", out,
    )  # fmt: skip
    assert code == 1
    assert_one_line_error(err, "cut.keras", "cannot load the Keras model")


def test_trusted_lambda_runs_when_allowed(cli, tmp_path, small_model_files) -> None:
    from tests.conftest import write_textured_tiles

    tiles = write_textured_tiles(tmp_path / "tiles", {"A": 1, "B": 1}, size=40)
    plain = extract(
        cli, tiles, tmp_path / "a.h5", "--extractor", "keras-model",
        "--weights", small_model_files["plain_h5"], "--option", "layer=gap",
    )  # fmt: skip
    doubled = extract(
        cli, tiles, tmp_path / "b.h5", "--extractor", "keras-model",
        "--weights", small_model_files["lambda_keras"], "--option", "allow_unsafe_lambda=true",
    )  # fmt: skip
    assert plain.shape == (2, 16)
    np.testing.assert_allclose(doubled, 2 * plain, rtol=1e-6)


def test_weights_of_another_architecture_and_truncated(cli, tmp_path, xception_files) -> None:
    tiles = tmp_path / "tiles"
    from tests.conftest import write_textured_tiles

    write_textured_tiles(tiles, {"A": 1, "B": 1}, size=64)
    out = tmp_path / "f.h5"
    code, _, err = cli(
        "extract", "--extractor", "keras:ResNet50", "--weights", xception_files["keras2_weights"],
        "--dataset", tiles, "--out", out,
    )  # fmt: skip
    assert code == 1
    assert_one_line_error(err, "does not fit keras:ResNet50", "not in the file")
    cut = tmp_path / "cut.h5"
    data = xception_files["keras2_weights"].read_bytes()
    cut.write_bytes(data[: len(data) // 3])
    code, _, err = cli(
        "extract", "--extractor", "keras:Xception", "--weights", cut, "--dataset", tiles,
        "--out", out,
    )  # fmt: skip
    assert code == 1
    assert_one_line_error(err, "cut.h5", "cannot read Keras HDF5 weights")
    assert not out.exists()


def test_unknown_application_and_missing_weights(cli, tmp_path) -> None:
    from tests.conftest import write_textured_tiles

    tiles = write_textured_tiles(tmp_path / "tiles", {"A": 1, "B": 1}, size=64)
    code, _, err = cli(
        "extract", "--extractor", "keras:Xceptoin", "--option", "random_weights=true",
        "--dataset", tiles,
    )  # fmt: skip
    assert code == 2
    assert_one_line_error(err, "keras:Xceptoin", "not a keras.applications model", "Xception")
    code, _, err = cli("extract", "--extractor", "keras:Xception", "--dataset", tiles)
    assert code == 1
    assert_one_line_error(err, "no weights for keras:Xception", "random_weights=true")


def test_missing_tensorflow_names_the_extra(cli, tmp_path, monkeypatch) -> None:
    """Where TensorFlow cannot be imported, one line says which extra to install."""
    from tests.conftest import write_textured_tiles

    fake = tmp_path / "no_tf"
    (fake / "tensorflow").mkdir(parents=True)
    (fake / "tensorflow" / "__init__.py").write_text("raise ImportError('no tensorflow here')\n")
    monkeypatch.syspath_prepend(str(fake))  # the spawned worker inherits sys.path
    tiles = write_textured_tiles(tmp_path / "tiles", {"A": 1, "B": 1}, size=64)
    code, _, err = cli(
        "extract", "--extractor", "keras:Xception", "--option", "random_weights=true",
        "--dataset", tiles,
    )  # fmt: skip
    assert code == 2
    assert_one_line_error(err, 'pip install "histobench[keras]"')
