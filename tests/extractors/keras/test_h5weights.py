"""Keras HDF5 weight files read as they are (h5py only, no TensorFlow), and bad files."""

from __future__ import annotations

import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from histobench.extractors.keras.convert import convert_xception, xception_layer_map
from histobench.extractors.keras.h5weights import read_keras_h5
from histobench.plugins.errors import WeightsError
from tests.conftest import assert_one_line_error

LAYERS = {
    "block1_conv1": {"kernel": (3, 3, 3, 4)},
    "conv2d_1": {"kernel": (1, 1, 4, 8)},
    "block1_conv1_bn": {"gamma": (4,), "beta": (4,), "moving_mean": (4,), "moving_variance": (4,)},
}


def write_legacy(path: Path, suffix: str, whole_model: bool = False) -> dict[str, dict]:
    """A legacy-layout file: ``suffix`` ':0' as Keras 2 wrote, '' as Keras 3 writes."""
    rng = np.random.default_rng(0)
    values = {
        layer: {v: rng.normal(size=s).astype("float32") for v, s in variables.items()}
        for layer, variables in LAYERS.items()
    }
    with h5py.File(path, "w") as f:
        root = f.create_group("model_weights") if whole_model else f
        root.attrs["layer_names"] = np.array([b"input_1", *[n.encode() for n in LAYERS]])
        root.create_group("input_1").attrs["weight_names"] = np.array([], dtype="S1")
        for layer, variables in values.items():
            group = root.create_group(layer)
            names = [f"{layer}/{v}{suffix}" for v in variables]
            group.attrs["weight_names"] = np.array([n.encode() for n in names])
            for name, value in zip(names, variables.values(), strict=True):
                group.create_dataset(name, data=value)
    return values


@pytest.mark.parametrize("suffix", [":0", ""])
@pytest.mark.parametrize("whole_model", [False, True])
def test_legacy_layout_is_read_by_layer_name(tmp_path: Path, suffix: str, whole_model: bool):
    expected = write_legacy(tmp_path / "w.h5", suffix, whole_model)
    got = read_keras_h5(tmp_path / "w.h5")
    assert list(got.layers) == list(LAYERS)  # file order; layers without weights left out
    for layer, variables in expected.items():
        assert set(got.layers[layer]) == set(variables)
        for name, value in variables.items():
            np.testing.assert_array_equal(got.layers[layer][name], value)
    assert got.auto_named("conv2d") == ["conv2d_1"]
    assert got.auto_named("block1_conv") == []  # block1_conv1 is a name, not conv + number


def test_nested_model_weights_are_split_by_their_own_layer(tmp_path: Path) -> None:
    with h5py.File(tmp_path / "nested.h5", "w") as f:
        f.attrs["layer_names"] = np.array([b"xception"])
        group = f.create_group("xception")
        names = ["xception/block1_conv1/kernel:0", "xception/block1_conv1_bn/gamma:0"]
        group.attrs["weight_names"] = np.array([n.encode() for n in names])
        for name in names:
            group.create_dataset(name, data=np.ones(2, "float32"))
    got = read_keras_h5(tmp_path / "nested.h5")
    assert set(got.layers) == {"block1_conv1", "block1_conv1_bn"}


def test_truncated_and_foreign_files_give_one_line(tmp_path: Path) -> None:
    write_legacy(tmp_path / "w.h5", ":0")
    data = (tmp_path / "w.h5").read_bytes()
    (tmp_path / "cut.h5").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.h5").write_text("not hdf5")
    with h5py.File(tmp_path / "k3.weights.h5", "w") as f:  # Keras 3 layout
        f.create_group("layers/conv2d/vars")
    for name, needle in [
        ("cut.h5", "cannot read Keras HDF5 weights"),
        ("text.h5", "cannot read Keras HDF5 weights"),
        ("k3.weights.h5", "Keras 3"),
        ("absent.h5", "not found"),
    ]:
        with pytest.raises(WeightsError) as info:
            read_keras_h5(tmp_path / name)
        message = str(info.value)
        assert name in message and needle in message and "\n" not in message


def test_convert_refuses_other_architectures(tmp_path: Path, cli) -> None:
    write_legacy(tmp_path / "other.h5", ":0")  # one residual conv, not Xception's four
    with pytest.raises(WeightsError, match="not Keras Xception weights"):
        convert_xception(read_keras_h5(tmp_path / "other.h5"))
    code, out, err = cli(
        "convert", "keras-xception", tmp_path / "other.h5", "--out", tmp_path / "x.safetensors"
    )
    assert code != 0 and out == ""
    assert_one_line_error(err, "other.h5", "not Keras Xception weights")
    assert not (tmp_path / "x.safetensors").exists()


def test_convert_bad_files_and_flags_one_line(tmp_path: Path, cli) -> None:
    (tmp_path / "cut.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    out = tmp_path / "x.safetensors"
    code, _, err = cli("convert", "keras-xception", tmp_path / "cut.h5", "--out", out)
    assert code == 1
    assert_one_line_error(err, "cut.h5", "cannot read Keras HDF5 weights")
    code, _, err = cli("convert", "keras-xception", tmp_path / "cut.h5", "--out", "x.pth")
    assert code == 2
    assert_one_line_error(err, "x.pth", ".safetensors")
    out.write_bytes(b"keep me")
    code, _, err = cli("convert", "keras-xception", tmp_path / "cut.h5", "--out", out)
    assert code == 2 and out.read_bytes() == b"keep me"
    assert_one_line_error(err, "exists already")


def test_layer_map_covers_xception_once(tmp_path: Path) -> None:
    """Every timm legacy_xception module with weights gets exactly one Keras layer."""
    import timm

    with h5py.File(tmp_path / "names.h5", "w") as f:
        names = ["conv2d_1", "conv2d_2", "conv2d_3", "conv2d_4"]
        names += [f"batch_normalization_{i}" for i in range(1, 5)]
        f.attrs["layer_names"] = np.array([n.encode() for n in names])
        for name in names:
            group = f.create_group(name)
            group.attrs["weight_names"] = np.array([f"{name}/kernel:0".encode()])
            group.create_dataset(f"{name}/kernel:0", data=np.zeros(1, "float32"))
    table = xception_layer_map(read_keras_h5(tmp_path / "names.h5"))
    model = timm.create_model("legacy_xception", pretrained=False, num_classes=0)
    modules = {k.rsplit(".", 1)[0] for k in model.state_dict()}
    modules = {m.removesuffix(".conv1").removesuffix(".pointwise") for m in modules}
    assert sorted(table.values()) == sorted(modules)
    assert table["conv2d_1"] == "block1.skip" and table["batch_normalization_4"] == "block12.skipbn"


def test_listing_extractors_never_imports_tensorflow(cli) -> None:
    code, out, _ = cli("list", "extractors", "--json")
    assert code == 0 and '"keras-model"' in out and '"keras:<model-name>"' in out
    assert "tensorflow" not in sys.modules
