"""A short, real fine-tune of EfficientNet-Lite0 (ImageNet weights) on CPU."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from histobench.benchmark.images import open_rgb
from histobench.extractors.backbones import build_backbone
from histobench.extractors.ftx.model import split_state
from histobench.extractors.ftx.spec import FTX_SPEC, FTXOptions
from histobench.extractors.ftx.train import finetune
from histobench.plugins.specs import Runtime

from .helpers import fast_recipe, read_weights, run_options


@pytest.fixture(scope="module")
def runs(train_tiles: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Step 1 only, step 1 + step 2 (same seed), and the uncached/augmented step-1 paths."""
    root = tmp_path_factory.mktemp("ftx-runs")
    recipes = {
        "step1": fast_recipe(step2_epochs=0),
        "both": fast_recipe(step2_epochs=1),
        "step1_uncached": fast_recipe(step2_epochs=0, step1_cache_features=False),
        "step1_flips": fast_recipe(step1_epochs=1, step2_epochs=0, augment="flips"),
    }
    for name, recipe in recipes.items():
        finetune(recipe, run_options(train_tiles, root / name))
    return {name: root / name for name in recipes}


def _imagenet_effnet() -> dict[str, torch.Tensor]:
    return build_backbone("effnet-lite0", input_size=64).model.state_dict()


def test_step1_loss_falls_and_backbone_is_bitwise_unchanged(runs: dict[str, Path]) -> None:
    card = json.loads((runs["step1"] / "model_card.json").read_text())
    losses = [h["train_loss"] for h in card["history"]]
    assert len(losses) == 2 and losses[1] < losses[0]
    original = _imagenet_effnet()
    for name in ("step1", "step1_uncached", "step1_flips"):
        part_a, _ = split_state(read_weights(runs[name]))
        assert set(part_a) == set(original)  # parameters *and* BN buffers
        changed = [k for k, v in original.items() if not torch.equal(part_a[k], v)]
        assert changed == [], f"{name}: step 1 changed {changed[:3]}"


def test_step2_leaves_head_bitwise_unchanged_and_moves_backbone(runs: dict[str, Path]) -> None:
    _, head_step1 = split_state(read_weights(runs["step1"]))
    part_a, head_both = split_state(read_weights(runs["both"]))
    assert set(head_both) == {
        f"{m}.{p}" for m in ("fc1", "fc2", "classifier") for p in ("weight", "bias")
    }
    for k, v in head_step1.items():
        assert torch.equal(head_both[k], v), k
    original = _imagenet_effnet()
    moved = [
        k for k, v in original.items() if v.is_floating_point() and not torch.equal(part_a[k], v)
    ]
    # Every trainable conv/BN tensor and the BN running statistics (train mode) move.
    assert len(moved) > 0.9 * sum(v.is_floating_point() for v in original.values())


def test_cached_step1_equals_image_step1(runs: dict[str, Path]) -> None:
    # Caching Part A's features is an optimisation, not a different recipe.
    _, cached = split_state(read_weights(runs["step1"]))
    _, images = split_state(read_weights(runs["step1_uncached"]))
    for k in cached:
        torch.testing.assert_close(images[k], cached[k], rtol=1e-4, atol=1e-5)


def test_card_and_outputs(runs: dict[str, Path], train_tiles: Path) -> None:
    out = runs["both"]
    card = json.loads((out / "model_card.json").read_text())
    assert card["classes"] == ["ADI", "BACK", "DEB", "LYM", "MUC", "MUS", "NORM", "STR", "TUM"]
    assert (
        card["weights_digest"]
        == hashlib.sha256((out / "weights.safetensors").read_bytes()).hexdigest()
    )
    assert card["recipe"]["lr1"] == 4e-4 and card["recipe"]["lr2"] == 5e-5
    assert [h["step"] for h in card["history"]] == [1, 1, 2]
    assert all(h["val_acc"] is not None for h in card["history"])
    assert card["data"]["n_train"] + card["data"]["n_val"] == 36 and card["data"]["n_val"] == 9
    assert card["preprocessing"]["size"] == 64
    assert card["backbone"]["weights_digest"] == build_backbone("effnet-lite0").weights_digest
    assert card["throughput"]["step2"]["images_per_s"] > 0
    assert card["precision"] == "float32" and card["device"] == "cpu"
    assert (out / "training_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Checkpoint tensors are dropped once the run is complete; no pickles anywhere.
    assert not list(out.glob("checkpoint-e*.safetensors"))
    assert json.loads((out / "checkpoint.json").read_text())["complete"] is True
    assert set(load_file(str(out / "weights.safetensors"))) == set(read_weights(out))


def test_rerun_of_finished_run_is_a_no_op(runs: dict[str, Path], train_tiles: Path) -> None:
    before = (runs["both"] / "weights.safetensors").read_bytes()
    result = finetune(fast_recipe(step2_epochs=1), run_options(train_tiles, runs["both"]))
    assert result.already_complete
    assert (runs["both"] / "weights.safetensors").read_bytes() == before


def test_ftx_features_are_the_last_hidden_layer(runs: dict[str, Path], train_tiles: Path) -> None:
    ftx = FTX_SPEC.factory(FTXOptions(weights=runs["both"]), Runtime())
    plain = build_backbone("effnet-lite0", input_size=64)
    tiles = sorted(train_tiles.glob("*/*.tif"))[::9][:4]
    batch = torch.stack([ftx.preprocess(open_rgb(p)) for p in tiles])
    feats = ftx.embed(batch)
    assert feats.shape == (4, 2048) and ftx.feature_dim == 2048
    # Recompute by hand from the stored tensors: relu(fc2(relu(fc1(GAP(backbone(x)))))).
    state = read_weights(runs["both"])
    part_a, head = split_state(state)
    model = build_backbone("effnet-lite0", pretrained=False, input_size=64).model
    model.load_state_dict(part_a)
    with torch.no_grad():
        pooled = model.eval()(batch)
        hidden = torch.relu(pooled @ head["fc1.weight"].T + head["fc1.bias"])
        hidden = torch.relu(hidden @ head["fc2.weight"].T + head["fc2.bias"])
        base = plain.model.eval()(batch)
    torch.testing.assert_close(feats, hidden, rtol=1e-4, atol=1e-5)
    assert (feats >= 0).all() and (feats == 0).any()  # post-ReLU activations
    assert base.shape[1] == 1280  # plain effnet features: a different space altogether
    # The fine-tuned backbone's pooled features differ from ImageNet's on the same tiles.
    assert not np.allclose(pooled.numpy(), base.numpy(), atol=1e-3)
    # The cache key follows the weights digest.
    other = FTX_SPEC.factory(FTXOptions(weights=runs["step1"]), Runtime())
    assert other.cache_key() != ftx.cache_key()
    assert ftx.identity()["weights_digest"] != other.identity()["weights_digest"]
