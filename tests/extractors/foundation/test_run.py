"""A foundation model end to end: ``bench run`` with local weights, the leaderboard's provenance
note, the weights digest in the feature-cache key, and the ``timm:<name>`` pooling option."""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch
from PIL import Image
from safetensors.torch import save_file

from histobench.extractors.builtin import TimmOptions, _timm
from histobench.extractors.foundation.extractor import FoundationExtractor, FoundationOptions
from histobench.extractors.foundation.registry import RECIPES
from histobench.plugins.specs import Runtime
from tests.extractors.foundation.publisher import crc_tiles, reduced, write_snapshot


@pytest.mark.slow
def test_bench_run_and_leaderboard_show_recipe_digest_and_licence(
    cli, tmp_path: Path, tiny_tiles: Path
) -> None:  # type: ignore[no-untyped-def]
    snapshot, _ = write_snapshot(RECIPES["kaiko-vits16"], tmp_path / "kaiko")
    code, out, err = cli(
        "run", "--extractor", "kaiko-vits16", "--weights", snapshot, "--task", "crc-tissue",
        "--dataset", tiny_tiles, "--repeats", "1", "--folds", "2", "--json",
    )  # fmt: skip
    assert code == 0, err
    code, md, err = cli("leaderboard", "--format", "md", "--task", "crc-tissue")
    assert code == 0, err
    from histobench.extractors.weights import file_digest

    digest = file_digest(snapshot / "model.safetensors")[:12]
    line = next(ln for ln in md.splitlines() if ln.startswith("- kaiko-vits16: recipe"))
    assert f"weights sha256 {digest}" in line and RECIPES["kaiko-vits16"].licence in line


def test_weights_digest_is_part_of_the_feature_cache_key(tmp_path: Path) -> None:
    recipe = reduced(RECIPES["kaiko-vits16"])
    a, _ = write_snapshot(recipe, tmp_path / "a", seed=0)
    b, _ = write_snapshot(recipe, tmp_path / "b", seed=1)
    key_a = FoundationExtractor(recipe, FoundationOptions(weights=a), Runtime()).cache_key()
    key_a2 = FoundationExtractor(recipe, FoundationOptions(weights=a), Runtime()).cache_key()
    key_b = FoundationExtractor(recipe, FoundationOptions(weights=b), Runtime()).cache_key()
    assert key_a == key_a2 != key_b


@pytest.mark.parametrize("pooling", ["cls", "mean", "cls+mean"])
def test_timm_vit_pooling_option(pooling: str, tmp_path: Path) -> None:
    reference = timm.create_model("vit_tiny_patch16_224", pretrained=False, num_classes=0).eval()
    path = tmp_path / "vit_tiny.safetensors"
    save_file(reference.state_dict(), path)
    options = TimmOptions(model_name="vit_tiny_patch16_224", weights=path, pooling=pooling)
    extractor = _timm(options, Runtime())
    batch = torch.stack([extractor.preprocess(Image.open(t).convert("RGB")) for t in crc_tiles(2)])
    ours = extractor.embed(batch)
    with torch.inference_mode():
        tokens = reference.forward_features(batch)  # [CLS, 196 patches], no registers
    by_hand = {"cls": tokens[:, 0], "mean": tokens[:, 1:].mean(1)}
    by_hand["cls+mean"] = torch.cat([by_hand["cls"], by_hand["mean"]], dim=-1)
    assert extractor.feature_dim == ours.shape[1] == by_hand[pooling].shape[1]
    assert torch.allclose(ours, by_hand[pooling], rtol=1e-4, atol=1e-5)
    assert extractor.identity()["pooling"] == pooling
