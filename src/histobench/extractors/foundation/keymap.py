"""Checkpoint key names → timm VisionTransformer key names.

``timm``: the publisher saved a timm model (UNI, Virchow, H-optimus, Prov-GigaPath, Kaiko).
``dinov2-original``: the DINOv2 repository's names (timm's, bar ``w12``/``w3`` for SwiGLU).
``hf-vit`` / ``hf-dinov2``: ``transformers`` ViTModel / Dinov2Model names; their separate query,
key and value projections are concatenated into timm's fused ``qkv`` (the same matrix product).
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
    if layout == "dinov2-original":
        return {
            re.sub(
                r"(blocks\.\d+\.mlp\.)w3", r"\1fc2", re.sub(r"(blocks\.\d+\.mlp\.)w12", r"\1fc1", k)
            ): v
            for k, v in state.items()
        }
    return _from_transformers(state)


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
