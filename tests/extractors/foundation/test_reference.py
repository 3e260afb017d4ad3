"""uni and virchow2 at full size: histobench's features equal an independent computation
written from the model cards (timm.create_model with the card's kwargs, torchvision's
transform, the card's tokens) to 1e-5 relative in float32."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from PIL import Image
from torchvision import transforms

from histobench.extractors.foundation.extractor import FoundationExtractor, FoundationOptions
from histobench.extractors.foundation.registry import RECIPES
from histobench.plugins.specs import Runtime
from tests.extractors.foundation.publisher import crc_tiles, reduced, write_snapshot

IMAGENET = {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}


def _ours(name: str, weights: Path, tiles: list[Path]) -> np.ndarray:
    extractor = FoundationExtractor(RECIPES[name], FoundationOptions(weights=weights), Runtime())
    batch = torch.stack([extractor.preprocess(Image.open(t)) for t in tiles])
    out = extractor.embed(batch).numpy()
    del extractor
    return out


def _close(ours: np.ndarray, ref: np.ndarray) -> None:
    scale = np.abs(ref).max()
    assert np.abs(ours - ref).max() <= 1e-5 * scale, np.abs(ours - ref).max() / scale


@pytest.mark.slow
def test_uni_equals_the_model_card(tmp_path: Path) -> None:
    tiles = crc_tiles(2)
    path, state = write_snapshot(RECIPES["uni"], tmp_path / "UNI")
    ours = _ours("uni", path, tiles)
    # https://huggingface.co/MahmoodLab/UNI
    model = timm.create_model(
        "vit_large_patch16_224", img_size=224, patch_size=16, init_values=1e-5,
        num_classes=0, dynamic_img_size=True,
    )  # fmt: skip
    model.load_state_dict(state, strict=True)
    transform = transforms.Compose([
        transforms.Resize(224), transforms.CenterCrop(224), transforms.ToTensor(),
        transforms.Normalize(**IMAGENET),
    ])  # fmt: skip
    with torch.inference_mode():
        ref = model.eval()(torch.stack([transform(Image.open(t).convert("RGB")) for t in tiles]))
    assert ours.shape == (2, 1024)
    _close(ours, ref.numpy())


def _virchow2_case(tmp_path: Path, depth: int | None) -> None:
    tiles = crc_tiles(2)
    recipe = RECIPES["virchow2"] if depth is None else reduced(RECIPES["virchow2"], depth)
    path, state = write_snapshot(recipe, tmp_path / "Virchow2")
    extractor = FoundationExtractor(recipe, FoundationOptions(weights=path), Runtime())
    batch = torch.stack([extractor.preprocess(Image.open(t)) for t in tiles])
    ours = extractor.embed(batch).numpy()
    del extractor
    # https://huggingface.co/paige-ai/Virchow2
    model = timm.create_model(
        "vit_huge_patch14_224", img_size=224, init_values=1e-5, num_classes=0, reg_tokens=4,
        mlp_ratio=5.3375, global_pool="", dynamic_img_size=True,
        mlp_layer=timm.layers.SwiGLUPacked, act_layer=torch.nn.SiLU,
        **({} if depth is None else {"depth": depth}),
    )  # fmt: skip
    model.load_state_dict(state, strict=True)
    del state
    transform = transforms.Compose([
        transforms.Resize(224, interpolation=transforms.InterpolationMode.BICUBIC),
        transforms.CenterCrop(224), transforms.ToTensor(), transforms.Normalize(**IMAGENET),
    ])  # fmt: skip
    with torch.inference_mode():
        output = model.eval()(torch.stack([transform(Image.open(t).convert("RGB")) for t in tiles]))
    assert output.shape == (2, 261, 1280)  # [CLS, 4 registers, 256 patches]
    class_token, patch_tokens = output[:, 0], output[:, 5:]
    ref = torch.cat([class_token, patch_tokens.mean(1)], dim=-1)
    assert ours.shape == (2, 2560)
    _close(ours, ref.numpy())


@pytest.mark.slow
def test_virchow2_equals_the_model_card(tmp_path: Path) -> None:
    _virchow2_case(tmp_path, depth=None)


def test_virchow2_tokens_and_transform_at_reduced_depth(tmp_path: Path) -> None:
    """The same comparison with 2 blocks: quick, for every edit of the pooling or transform."""
    _virchow2_case(tmp_path, depth=2)


def test_card_transform_matches_torchvision_on_resized_tiles() -> None:
    """Resize-shorter-side + centre crop, as torchvision does, on a non-square, off-size tile."""
    from histobench.extractors.foundation.recipe import CardPreprocessing

    tile = Image.open(crc_tiles(1)[0]).convert("RGB").resize((300, 260))
    for name in ("prov-gigapath", "uni", "h-optimus-0"):
        spec = RECIPES[name].input
        ours = CardPreprocessing.of(spec)(tile)
        mode = getattr(transforms.InterpolationMode, spec.interpolation.upper())
        ref = transforms.Compose([
            transforms.Resize(spec.resize, interpolation=mode), transforms.CenterCrop(spec.crop),
            transforms.ToTensor(), transforms.Normalize(spec.mean, spec.std),
        ])(tile)  # fmt: skip
        assert ours.shape == ref.shape == (3, spec.crop, spec.crop)
        assert torch.allclose(ours, ref, atol=1e-5), name
