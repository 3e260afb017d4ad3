"""Checkpoint key names → timm VisionTransformer key names.

``timm``: the publisher saved a timm model (UNI, Virchow, H-optimus, Prov-GigaPath, Kaiko).
``dinov2-original``: the DINOv2 repository's names (timm's, bar ``w12``/``w3`` for SwiGLU).
``hf-vit`` / ``hf-dinov2``: ``transformers`` ViTModel / Dinov2Model names; their separate query,
key and value projections are concatenated into timm's fused ``qkv`` (the same matrix product).
``timm-0.5-swin``: a Swin Transformer saved by timm 0.5 (CTransPath): each stage's patch merging
moves to the start of the next stage, and the buffers derived from shapes are dropped.

``transformers`` register tokens (``embeddings.register_tokens``, Hibou) carry no position
embedding, and the class token's is the grid's first entry; timm's register models
(``no_embed_class``) hold neither, so that entry is added into the class token once, as timm's
own DINOv2 converter does: the same sum the network would compute at every forward.
"""

from __future__ import annotations

import re

import torch

_HF_BLOCK = {
    "layernorm_before": "norm1",  # ViTModel
    "layernorm_after": "norm2",
    "norm1": "norm1",  # Dinov2Model
    "norm2": "norm2",
    "attention.output.dense": "attn.proj",
    "intermediate.dense": "mlp.fc1",
    "output.dense": "mlp.fc2",
    "mlp.fc1": "mlp.fc1",
    "mlp.fc2": "mlp.fc2",
    "mlp.weights_in": "mlp.fc1",  # Dinov2 SwiGLU: silu(first half) * second half, as timm's
    "mlp.weights_out": "mlp.fc2",
    "layer_scale1.lambda1": "ls1.gamma",
    "layer_scale2.lambda1": "ls2.gamma",
}
_HF_TOP = {
    "embeddings.cls_token": "cls_token",
    "embeddings.position_embeddings": "pos_embed",
    "embeddings.register_tokens": "reg_token",
    "embeddings.patch_embeddings.projection.weight": "patch_embed.proj.weight",
    "embeddings.patch_embeddings.projection.bias": "patch_embed.proj.bias",
    "layernorm.weight": "norm.weight",
    "layernorm.bias": "norm.bias",
}
_LAYER = re.compile(r"^encoder\.layer\.(\d+)\.(.+)\.(weight|bias|lambda1)$")
_QKV = re.compile(r"^attention\.attention\.(query|key|value)$")


def to_timm(state: dict[str, torch.Tensor], layout: str) -> dict[str, torch.Tensor]:
    """The same tensors under timm's names; keys it cannot place are kept as they are, so the
    strict check reports them as unexpected."""
    if layout == "timm":
        return state
    if layout == "timm-0.5-swin":
        return _from_old_swin(state)
    if layout == "dinov2-original":
        return {
            re.sub(
                r"(blocks\.\d+\.mlp\.)w3", r"\1fc2", re.sub(r"(blocks\.\d+\.mlp\.)w12", r"\1fc1", k)
            ): v
            for k, v in state.items()
        }
    registers = any(k.endswith("embeddings.register_tokens") for k in state)
    mapped = _from_transformers(state)
    return _fold_class_position(mapped) if registers else mapped


def _fold_class_position(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # A grid without the class entry, or no class token, is left as it is: the strict check
    # then names the misfit.
    cls, pos = state.get("cls_token"), state.get("pos_embed")
    if cls is None or pos is None or pos.ndim != 3 or cls.shape[-1] != pos.shape[-1]:
        return state
    return {**state, "cls_token": cls + pos[:, :1], "pos_embed": pos[:, 1:]}


_OLD_SWIN_DERIVED = re.compile(
    r"^layers\.\d+\.blocks\.\d+\.(attn\.relative_position_index|attn_mask)$"
)
_OLD_SWIN_MERGE = re.compile(r"^layers\.(\d+)\.downsample\.")


def _from_old_swin(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if _OLD_SWIN_DERIVED.match(key):
            continue  # recomputed from the window size (non-persistent buffers in timm 1)
        merge = _OLD_SWIN_MERGE.match(key)
        if merge:  # timm 0.5 merges patches at the end of a stage, timm 1 at the next one's start
            key = f"layers.{int(merge.group(1)) + 1}.downsample.{key[merge.end() :]}"
        out[key] = value
    return out


def _strip_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # A *ForImageClassification checkpoint nests the backbone under "vit." / "dinov2.".
    for prefix in ("vit.", "dinov2.", "model."):
        if state and all(k.startswith(prefix) for k in state):
            return {k[len(prefix) :]: v for k, v in state.items()}
    return state


def _from_transformers(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    qkv: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    for key, value in _strip_prefix(state).items():
        if key in _HF_TOP:
            out[_HF_TOP[key]] = value
            continue
        m = _LAYER.match(key)
        if m is None:
            out[key] = value
            continue
        block, inner, kind = m.groups()
        q = _QKV.match(inner)
        if q:
            qkv.setdefault((block, kind), {})[q.group(1)] = value
        elif inner in _HF_BLOCK or f"{inner}.{kind}" in _HF_BLOCK:
            name = _HF_BLOCK.get(f"{inner}.{kind}")
            out[
                f"blocks.{block}.{name}" if name else f"blocks.{block}.{_HF_BLOCK[inner]}.{kind}"
            ] = value
        else:
            out[key] = value
    for (block, kind), parts in qkv.items():
        if set(parts) == {"query", "key", "value"}:
            fused = torch.cat([parts["query"], parts["key"], parts["value"]], dim=0)
            out[f"blocks.{block}.attn.qkv.{kind}"] = fused
        else:  # an incomplete triple stays visible as unexpected keys
            for which, value in parts.items():
                out[f"encoder.layer.{block}.attention.attention.{which}.{kind}"] = value
    return out
