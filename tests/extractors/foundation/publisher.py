"""Random-weight checkpoints in each publisher's real key layout and snapshot layout.

The weights are random, the names and shapes are the publisher's: timm names for timm-hub
snapshots (UNI, Virchow, H-optimus, ...), the DINOv2 repository's names (plus ``mask_token``),
and ``transformers`` ViTModel / Dinov2Model names (separate query/key/value, ``layernorm``,
``pooler``/``mask_token``, and Hibou's ``embeddings.register_tokens`` with the class token's
position entry at the head of the grid, as DINOv2 keeps it), and CTransPath's ``ctranspath.pth``
as timm 0.5.4 saved it (``{"model": ...}``, patch merging at the end of each stage, the window
buffers included: names and shapes as ``timm_ctp`` 0.5.4 builds ``ctran.py``). The publishers'
names are written here from their code's conventions, independently of histobench's key map.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import timm
import torch
from safetensors.torch import save_file
from timm.layers import SwiGLUPacked

from histobench.extractors.foundation.recipe import Recipe

CRC = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "crc-sample"


def reduced(recipe: Recipe, depth: int = 2) -> Recipe:
    """The same recipe with fewer transformer blocks (the key mapping is the point)."""
    if recipe.truncate_after or recipe.architecture.startswith("swin"):
        return recipe  # CNNs and the Swin-T (28 M parameters) stay whole
    return dataclasses.replace(recipe, kwargs={**recipe.kwargs, "depth": depth})


def random_timm_state(recipe: Recipe, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors in the shapes of the recipe's timm network (no timm init: fast)."""
    with torch.device("meta"):
        model = timm.create_model(recipe.architecture, pretrained=False, **recipe.kwargs)
    g = torch.Generator().manual_seed(seed)
    state = {}
    for key, meta in model.state_dict().items():
        shape = tuple(meta.shape)
        if key.endswith("num_batches_tracked"):
            state[key] = torch.zeros((), dtype=torch.long)
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=g) + 0.5
        elif key.endswith(".gamma") or (key.endswith(".weight") and len(shape) == 1):
            state[key] = 1.0 + 0.1 * torch.randn(shape, generator=g)  # norms, layer scale
        else:
            state[key] = 0.05 * torch.randn(shape, generator=g)
    return state


def _hf_block(name: str, dinov2: bool) -> str:
    vit = {
        "norm1": "layernorm_before", "norm2": "layernorm_after",
        "attn.proj": "attention.output.dense", "mlp.fc1": "intermediate.dense",
        "mlp.fc2": "output.dense",
    }  # fmt: skip
    dino = {
        "norm1": "norm1", "norm2": "norm2", "attn.proj": "attention.output.dense",
        "mlp.fc1": "mlp.fc1", "mlp.fc2": "mlp.fc2",
    }  # fmt: skip
    return (dino if dinov2 else vit)[name]


def unfold_class_position(state: dict[str, torch.Tensor], seed: int = 0) -> dict[str, torch.Tensor]:
    """timm's register layout (``no_embed_class``) → DINOv2's: a random position entry for the
    class token heads the grid and is taken out of the class token, so both encode the same
    network (the returned state's ``cls_token`` is the DINOv2 one)."""
    g = torch.Generator().manual_seed(seed + 1000)
    first = 0.05 * torch.randn(state["cls_token"].shape, generator=g)
    return {
        **state,
        "cls_token": state["cls_token"] - first,
        "pos_embed": torch.cat([first, state["pos_embed"]], dim=1),
    }


def to_transformers(
    state: dict[str, torch.Tensor], dinov2: bool, swiglu: bool = False
) -> dict[str, torch.Tensor]:
    """timm names → transformers ViTModel (``dinov2=False``) or Dinov2Model names (with
    ``reg_token``: Hibou's register model; give it an unfolded state)."""
    out: dict[str, torch.Tensor] = {
        "embeddings.cls_token": state["cls_token"],
        "embeddings.position_embeddings": state["pos_embed"],
        "embeddings.patch_embeddings.projection.weight": state["patch_embed.proj.weight"],
        "embeddings.patch_embeddings.projection.bias": state["patch_embed.proj.bias"],
        "layernorm.weight": state["norm.weight"],
        "layernorm.bias": state["norm.bias"],
    }
    blocks = sorted({int(k.split(".")[1]) for k in state if k.startswith("blocks.")})
    for i in blocks:
        pre, hf = f"blocks.{i}.", f"encoder.layer.{i}."
        for kind in ("weight", "bias"):
            q, k, v = state[f"{pre}attn.qkv.{kind}"].chunk(3, dim=0)
            for name, t in (("query", q), ("key", k), ("value", v)):
                out[f"{hf}attention.attention.{name}.{kind}"] = t.clone()
            for name in ("norm1", "norm2", "attn.proj", "mlp.fc1", "mlp.fc2"):
                target = _hf_block(name, dinov2)
                if swiglu and name in ("mlp.fc1", "mlp.fc2"):
                    target = "mlp.weights_in" if name == "mlp.fc1" else "mlp.weights_out"
                out[f"{hf}{target}.{kind}"] = state[f"{pre}{name}.{kind}"]
        if dinov2:
            out[f"{hf}layer_scale1.lambda1"] = state[f"{pre}ls1.gamma"]
            out[f"{hf}layer_scale2.lambda1"] = state[f"{pre}ls2.gamma"]
    if "reg_token" in state:
        out["embeddings.register_tokens"] = state["reg_token"]
    dim = state["cls_token"].shape[-1]
    if dinov2:
        out["embeddings.mask_token"] = torch.zeros(1, dim)
    else:
        out["pooler.dense.weight"] = 0.05 * torch.randn(dim, dim)
        out["pooler.dense.bias"] = torch.zeros(dim)
    return out


def to_timm05_swin(recipe: Recipe, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """timm 1 Swin names → timm 0.5.4's: patch merging at the end of the previous stage, and each
    block's relative position index (and, in shifted blocks, its attention mask) saved as
    buffers (their values from a CPU-built model: they depend on shapes only)."""
    model = timm.create_model(recipe.architecture, pretrained=False, **recipe.kwargs)
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] == "layers" and parts[2] == "downsample":
            key = ".".join(["layers", str(int(parts[1]) - 1), *parts[2:]])
        out[key] = value
    for name, buffer in model.named_buffers():
        if buffer is not None and name.endswith(("relative_position_index", "attn_mask")):
            out[name] = buffer.clone()
    return out


def write_snapshot(recipe: Recipe, folder: Path, seed: int = 0) -> tuple[Path, dict]:
    """A folder (or file) laid out as the recipe's publisher ships it; returns (path, the timm
    state the checkpoint encodes)."""
    state = random_timm_state(recipe, seed)
    folder.mkdir(parents=True, exist_ok=True)
    config = {"architecture": recipe.architecture, "num_features": recipe.feature_dim}
    if recipe.key_layout == "hf-vit":
        torch.save(to_transformers(state, dinov2=False), folder / "pytorch_model.bin")
        config = {"model_type": "vit", "layer_norm_eps": 1e-12}
    elif recipe.key_layout == "hf-dinov2":
        swiglu = recipe.kwargs.get("mlp_layer") is SwiGLUPacked or "giant" in recipe.architecture
        published = unfold_class_position(state, seed) if "reg_token" in state else state
        if published is not state:  # the class token the checkpoint encodes, exactly
            state = {**state, "cls_token": published["cls_token"] + published["pos_embed"][:, :1]}
        save_file(
            to_transformers(published, dinov2=True, swiglu=swiglu), folder / "model.safetensors"
        )
        config = {"model_type": "dinov2", "use_swiglu_ffn": swiglu}
    elif recipe.key_layout == "timm-0.5-swin":  # a single .pth file, as the TransPath release
        path = folder / "ctranspath.pth"
        torch.save({"model": to_timm05_swin(recipe, state)}, path)
        return path, state
    elif recipe.key_layout == "dinov2-original":  # a single .pth file, as Meta's releases
        path = folder / f"{recipe.name}_pretrain.pth"
        torch.save({**state, "mask_token": torch.zeros(1, state["cls_token"].shape[-1])}, path)
        return path, state
    elif recipe.name in ("uni", "uni2-h", "prov-gigapath"):
        torch.save(state, folder / "pytorch_model.bin")
    else:
        save_file(state, folder / "model.safetensors")
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder, state


def crc_tiles(count: int = 2) -> list[Path]:
    import pytest

    if not CRC.is_dir():
        pytest.skip(f"shared sample data not found at {CRC}")
    tiles = sorted(CRC.glob("*/*.tif"))
    # Tiles of different classes, so features must differ between them.
    by_class: dict[str, Path] = {}
    for t in tiles:
        by_class.setdefault(t.parent.name, t)
    return list(by_class.values())[:count]
