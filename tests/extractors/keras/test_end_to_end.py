"""A Keras extractor and a PyTorch extractor in one benchmark process: both runs stored on the
same split plan, compared, and on the leaderboard side by side."""

from __future__ import annotations

import json
import pickle
import sys

import numpy as np
import pytest

from tests.conftest import write_textured_tiles
from tests.extractors.keras.conftest import requires_tensorflow

pytestmark = [pytest.mark.slow, requires_tensorflow]


def test_keras_and_torch_runs_share_a_plan_and_a_leaderboard(cli, tmp_path) -> None:
    tiles = write_textured_tiles(tmp_path / "tiles", {"A": 6, "B": 6, "C": 6}, size=80)
    common = ["--task", "crc-tissue", "--dataset", tiles, "--repeats", "2", "--folds", "3"]
    code, out, err = cli(
        "run", "--extractor", "keras:Xception", "--option", "random_weights=true", *common,
        "--json",
    )  # fmt: skip
    assert code == 0, err
    keras_run = json.loads(out)
    code, out, err = cli(
        "run", "--extractor", "effnet-lite0", "--option", "input_size=80", *common, "--json"
    )
    assert code == 0, err
    torch_run = json.loads(out)
    assert keras_run["plan_id"] == torch_run["plan_id"]
    assert np.asarray(keras_run["fold_scores"]).shape == (2, 3)
    identity = keras_run["config"]["resolved"]["extractor_identity"]
    assert identity["keras_model"] == "Xception" and identity["tensorflow"]

    code, out, err = cli("leaderboard", "--task", "crc-tissue", "--format", "json")
    assert code == 0, err
    rows = {row["extractor"]: row for row in json.loads(out)["rows"]}
    assert {"keras:Xception", "effnet-lite0"} <= set(rows)
    assert rows["keras:Xception"]["run_id"] == keras_run["run_id"]
    assert rows["keras:Xception"]["mean"] == pytest.approx(keras_run["mean"])

    code, out, err = cli(
        "compare", "--task", "crc-tissue", "--extractors", "keras:Xception,effnet-lite0", "--json"
    )
    assert code == 0, err
    comparison = json.loads(out)
    assert comparison["mean_a"] == pytest.approx(keras_run["mean"])
    assert 0.0 <= comparison["p_value"] <= 1.0
    assert "tensorflow" not in sys.modules  # TensorFlow ran in the Keras worker only


def test_keras_extractor_is_deterministic_and_picklable(tmp_path) -> None:
    """Same batch, same features; a pickled copy (as model processes receive it) rebuilds the
    same random model from its recipe in its own worker."""
    import torch
    from PIL import Image

    from histobench.extractors.keras.extractor import KerasApplicationOptions, make_application
    from histobench.plugins.specs import Runtime

    tiles = write_textured_tiles(tmp_path / "tiles", {"A": 3}, size=72)
    options = KerasApplicationOptions(application="xception", random_weights=True)
    extractor = make_application(options, Runtime(seed=3))
    assert extractor.name == "keras:Xception" and extractor.feature_dim == 2048
    images = [Image.open(p).convert("RGB") for p in sorted(tiles.rglob("*.png"))]
    batch = torch.stack([extractor.preprocess(im) for im in images])
    first, again = extractor.embed(batch).numpy(), extractor.embed(batch).numpy()
    np.testing.assert_array_equal(first, again)
    copy = pickle.loads(pickle.dumps(extractor))
    assert copy.cache_key() == extractor.cache_key()
    np.testing.assert_array_equal(copy.embed(batch).numpy(), first)
    other_seed = make_application(options, Runtime(seed=4))
    assert other_seed.cache_key() != extractor.cache_key()
