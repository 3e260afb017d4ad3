"""Hibou-B/L and CTransPath: their publishers' checkpoint layouts load strictly and give the
features of an independent rebuild; a wrong checkpoint is a one-line error.

Real weights cannot be downloaded here, so every checkpoint is random weights written in the
publisher's key layout (``publisher.py``): Hibou's ``transformers`` DINOv2 names with register
tokens, CTransPath's ``{"model": ...}`` pickle as timm 0.5.4 saved it. The references load the
same tensors through timm's own converters (``checkpoint_filter_fn`` of the DINOv2 and Swin
models), not through histobench's key map, and use torchvision's transform from the cards.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from PIL import Image
from safetensors.torch import load_file, save_file
from torchvision import transforms

from histobench.extractors.foundation.checkpoint import load_model
from histobench.extractors.foundation.extractor import FoundationExtractor, FoundationOptions
from histobench.extractors.foundation.registry import RECIPES
from histobench.plugins.errors import WeightsError
from histobench.plugins.specs import Runtime
from tests.extractors.foundation.publisher import crc_tiles, reduced, write_snapshot

IMAGENET = {"mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}
HIBOU = {"mean": (0.7068, 0.5755, 0.722), "std": (0.195, 0.2316, 0.1816)}


def _ours(recipe, weights: Path, tiles: list[Path]) -> np.ndarray:  # type: ignore[no-untyped-def]
    extractor = FoundationExtractor(recipe, FoundationOptions(weights=weights), Runtime())
    batch = torch.stack([extractor.preprocess(Image.open(t)) for t in tiles])
    return extractor.embed(batch).numpy()


def _close(ours: np.ndarray, ref: np.ndarray) -> None:
    scale = np.abs(ref).max()
    assert np.abs(ours - ref).max() <= 1e-5 * scale, np.abs(ours - ref).max() / scale


def _dinov2_original(hf: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The Hugging Face snapshot's tensors under the DINOv2 repository's names (HistAI's own
    ``hibou`` package), the input of timm's DINOv2 converter."""
    out = {
        "cls_token": hf["embeddings.cls_token"],
        "pos_embed": hf["embeddings.position_embeddings"],
        "register_tokens": hf["embeddings.register_tokens"],
        "mask_token": hf["embeddings.mask_token"],  # how timm's converter knows DINOv2
        "patch_embed.proj.weight": hf["embeddings.patch_embeddings.projection.weight"],
        "patch_embed.proj.bias": hf["embeddings.patch_embeddings.projection.bias"],
        "norm.weight": hf["layernorm.weight"],
        "norm.bias": hf["layernorm.bias"],
    }
    blocks = {int(k.split(".")[2]) for k in hf if k.startswith("encoder.layer.")}
    for i in blocks:
        hf_block, block = f"encoder.layer.{i}.", f"blocks.{i}."
        for kind in ("weight", "bias"):
            out[f"{block}attn.qkv.{kind}"] = torch.cat(
                [hf[f"{hf_block}attention.attention.{n}.{kind}"] for n in ("query", "key", "value")]
            )
            for ours, theirs in (
                ("attn.proj", "attention.output.dense"),
                ("norm1", "norm1"),
                ("norm2", "norm2"),
                ("mlp.w12", "mlp.weights_in"),
                ("mlp.w3", "mlp.weights_out"),
            ):
                out[f"{block}{ours}.{kind}"] = hf[f"{hf_block}{theirs}.{kind}"]
        out[f"{block}ls1.gamma"] = hf[f"{hf_block}layer_scale1.lambda1"]
        out[f"{block}ls2.gamma"] = hf[f"{hf_block}layer_scale2.lambda1"]
    return out


@pytest.mark.parametrize(
    ("name", "arch", "dim", "hidden"),
    [
        ("hibou-b", "vit_base_patch14_reg4_dinov2", 768, 2048),
        ("hibou-l", "vit_large_patch14_reg4_dinov2", 1024, 2736),
    ],
)
def test_hibou_equals_timm_dinov2_register_model(
    name: str, arch: str, dim: int, hidden: int, tmp_path: Path
) -> None:
    tiles = crc_tiles(2)
    recipe = reduced(RECIPES[name], depth=2)
    folder, _ = write_snapshot(recipe, tmp_path / name)
    hf = load_file(folder / "model.safetensors")
    # The publisher's layout: 1 + 256 position entries (the class token's first), 4 registers,
    # DINOv2's fused SwiGLU with (int(4 * dim * 2 / 3) + 7) // 8 * 8 hidden units.
    assert hf["embeddings.position_embeddings"].shape == (1, 257, dim)
    assert hf["embeddings.register_tokens"].shape == (1, 4, dim)
    assert hf["encoder.layer.0.mlp.weights_in.weight"].shape == (2 * hidden, dim)
    assert hf["encoder.layer.0.mlp.weights_out.weight"].shape == (dim, hidden)
    ours = _ours(recipe, folder, tiles)

    # https://github.com/HistAI/hibou: DINOv2 ViT/14, 4 registers, SwiGLU, layer scale; the
    # embedding is the normed class token (pooler_output); bicubic 224, Hibou mean/std.
    model = timm.create_model(
        arch, img_size=224, depth=2, num_classes=0, mlp_layer=timm.layers.SwiGLUPacked,
        act_layer=torch.nn.SiLU, mlp_ratio=2 * hidden / dim,
    )  # fmt: skip
    from timm.models.vision_transformer import checkpoint_filter_fn

    model.load_state_dict(checkpoint_filter_fn(_dinov2_original(hf), model), strict=True)
    transform = transforms.Compose([
        transforms.Resize(224, interpolation=transforms.InterpolationMode.BICUBIC),
        transforms.CenterCrop(224), transforms.ToTensor(), transforms.Normalize(**HIBOU),
    ])  # fmt: skip
    with torch.inference_mode():
        tokens = model.eval().forward_features(
            torch.stack([transform(Image.open(t).convert("RGB")) for t in tiles])
        )
    assert tokens.shape == (2, 1 + 4 + 256, dim)
    assert ours.shape == (2, dim)
    _close(ours, tokens[:, 0].numpy())


def test_ctranspath_equals_timm_swin_converter(tmp_path: Path) -> None:
    tiles = crc_tiles(2)
    recipe = RECIPES["ctranspath"]
    path, _ = write_snapshot(recipe, tmp_path / "TransPath")
    # The release: a torch pickle whose "model" entry timm 0.5.4 saved (200 tensors as timm_ctp
    # builds ctran.py, head removed): merging at the end of stages 0-2, window buffers kept.
    published = torch.load(path, weights_only=True)["model"]
    assert len(published) == 200
    assert published["layers.0.downsample.reduction.weight"].shape == (192, 384)
    assert published["patch_embed.proj.6.weight"].shape == (96, 24, 1, 1)
    assert sorted(k for k in published if k.endswith("attn_mask")) == [
        "layers.0.blocks.1.attn_mask", "layers.1.blocks.1.attn_mask",
        "layers.2.blocks.1.attn_mask", "layers.2.blocks.3.attn_mask",
        "layers.2.blocks.5.attn_mask",
    ]  # fmt: skip
    ours = _ours(recipe, path, tiles)

    # https://github.com/Xiyue-Wang/TransPath: swin_tiny_patch4_window7_224 with ConvStem, head
    # removed; Resize(224), ToTensor, ImageNet mean/std; timm's converter for old Swin names.
    from timm.models.swin_transformer import checkpoint_filter_fn

    from histobench.extractors.foundation.transpath import ConvStem

    model = timm.create_model("swin_tiny_patch4_window7_224", embed_layer=ConvStem, num_classes=0)
    model.load_state_dict(checkpoint_filter_fn({"model": published}, model), strict=True)
    transform = transforms.Compose([
        transforms.Resize(224), transforms.ToTensor(), transforms.Normalize(**IMAGENET),
    ])  # fmt: skip
    with torch.inference_mode():
        ref = model.eval()(torch.stack([transform(Image.open(t).convert("RGB")) for t in tiles]))
    assert ours.shape == ref.shape == (2, 768)
    _close(ours, ref.numpy())


def test_hibou_without_register_tokens_is_refused_in_one_line(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    recipe = reduced(RECIPES["hibou-b"])
    folder, _ = write_snapshot(recipe, tmp_path / "hibou")
    state = load_file(folder / "model.safetensors")
    del state["embeddings.register_tokens"]  # e.g. a plain Dinov2Model checkpoint
    bad = tmp_path / "no-registers.safetensors"
    save_file(state, bad)
    with pytest.raises(WeightsError) as err:
        load_model(recipe, bad)
    message = str(err.value)
    assert "\n" not in message and str(bad) in message and "not a 'hibou-b' checkpoint" in message
    assert "1 missing keys (reg_token)" in message
    assert "shape mismatches (pos_embed (1, 257, 768) vs (1, 256, 768))" in message
    code, out, err = cli("weights", "check", "hibou-b", "--weights", bad)
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert code == 1 and "Traceback" not in out + err and len(lines) == 1
    # The full-depth recipe: the 2-block file also lacks blocks 2..11, named after reg_token.
    assert (
        lines[0].startswith("hibou-b: ERROR") and "missing keys (reg_token, blocks.2." in lines[0]
    )


def test_ctranspath_in_timm1_layout_is_refused_in_one_line(tmp_path: Path) -> None:
    """A CTransPath checkpoint re-saved by timm 1 (merging at the start of stages 1-3) is not the
    release's layout: its merging layers would move one stage too far."""
    path, state = write_snapshot(RECIPES["ctranspath"], tmp_path / "TransPath")
    resaved = tmp_path / "timm1.pth"
    torch.save({"model": state}, resaved)
    with pytest.raises(WeightsError) as err:
        load_model(RECIPES["ctranspath"], resaved)
    message = str(err.value)
    assert "\n" not in message and "not a 'ctranspath' checkpoint" in message
    assert "missing keys (layers.1.downsample" in message
    assert "unexpected keys (layers.4.downsample" in message


def test_weights_list_and_check_show_the_new_models(cli, hb_home: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    code, out, _ = cli("weights", "list", "--json", "--no-digest")
    dims = {e["name"]: e["feature_dim"] for e in json.loads(out)}
    assert code == 0 and dims["hibou-b"] == 768 and dims["hibou-l"] == 1024
    assert dims["ctranspath"] == 768
    path, _ = write_snapshot(RECIPES["ctranspath"], hb_home / "weights" / "ctranspath")
    code, out, err = cli("weights", "check", "ctranspath")
    assert code == 0 and out.startswith("ctranspath: OK") and str(path) in out, out + err
    code, out, _ = cli("weights", "list")
    line = next(ln for ln in out.splitlines() if ln.startswith("ctranspath "))
    assert "found" in line and str(path) in line
