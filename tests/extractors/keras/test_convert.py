"""`bench convert keras-xception`: a Keras Xception's weights in timm's legacy_xception give the
Keras model's features through `bench extract --extractor imgnet` (parity on real tiles)."""

from __future__ import annotations

import numpy as np
import pytest
from safetensors.torch import load_file

from tests.conftest import assert_one_line_error
from tests.extractors.keras.conftest import requires_tensorflow
from tests.extractors.keras.helpers import assert_relative, extract

pytestmark = [pytest.mark.slow, requires_tensorflow]


def test_converted_weights_give_the_keras_features(cli, tmp_path, xception_files, tile_folder):
    """Parity within 1e-4 relative: the study's layout (Keras 2 names with ':0', unnamed
    residual layers numbered from 1) → safetensors → imgnet at the tiles' own 224 px, against
    plain Keras' predict on the same tiles."""
    converted = tmp_path / "xception.safetensors"
    code, out, err = cli(
        "convert", "keras-xception", xception_files["keras2_weights"], "--out", converted
    )
    assert code == 0 and "legacy_xception" in out, err
    got = extract(
        cli, tile_folder, tmp_path / "f.h5", "--extractor", "imgnet", "--weights", converted
    )
    reference = np.load(xception_files["reference"])
    assert got.shape == reference.shape == (len(reference), 2048)
    assert_relative(got, reference, 1e-4)


def test_whole_model_file_converts_to_the_same_tensors(cli, tmp_path, xception_files):
    """A model saved whole (``model_weights`` group, Keras 3 names without ':0') and the
    weights-only Keras 2 file hold the same weights: the same state dict, byte for byte
    reproducible."""
    a, b, again = (tmp_path / n for n in ("a.safetensors", "b.safetensors", "c.safetensors"))
    for source, out in [("keras2_weights", a), ("model_h5", b), ("keras2_weights", again)]:
        code, _, err = cli("convert", "keras-xception", xception_files[source], "--out", out)
        assert code == 0, err
    state_a, state_b = load_file(str(a)), load_file(str(b))
    assert state_a.keys() == state_b.keys()
    for key in state_a:
        assert np.array_equal(state_a[key].numpy(), state_b[key].numpy()), key
    assert a.read_bytes() == again.read_bytes()  # a stable digest: stable feature-cache keys


def test_wrong_shapes_are_refused(cli, tmp_path, xception_files) -> None:
    import h5py

    broken = tmp_path / "wide.h5"
    broken.write_bytes(xception_files["keras2_weights"].read_bytes())
    with h5py.File(broken, "r+") as f:
        name = "block14_sepconv2/pointwise_kernel:0"
        del f["block14_sepconv2"][name]
        f["block14_sepconv2"].create_dataset(name, data=np.zeros((1, 1, 1536, 1024), "float32"))
    code, _, err = cli("convert", "keras-xception", broken, "--out", tmp_path / "x.safetensors")
    assert code == 1
    assert_one_line_error(err, "wide.h5", "does not fit timm legacy_xception")
    assert not (tmp_path / "x.safetensors").exists()
