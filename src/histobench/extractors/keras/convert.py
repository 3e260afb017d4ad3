"""Keras Xception weights → a timm ``legacy_xception`` state dict (safetensors).

Both are Chollet's Xception; only names, tensor layouts and two numerical conventions differ.
The whole mapping is the table built by ``xception_layer_map`` (Keras layer → timm module):

    Keras                              timm legacy_xception
    block1_conv1, block1_conv1_bn      conv1, bn1                       entry flow stem
    block1_conv2, block1_conv2_bn      conv2, bn2
    block2_sepconv{1,2}[_bn]           block1.rep.{0,1,3,4}             (block1 starts without ReLU)
    block{3,4}_sepconv{1,2}[_bn]       block{2,3}.rep.{1,2,4,5}
    block{5..12}_sepconv{1,2,3}[_bn]   block{4..11}.rep.{1,2,4,5,7,8}   middle flow
    block13_sepconv{1,2}[_bn]          block12.rep.{1,2,4,5}            exit flow
    block14_sepconv{1,2}[_bn]          conv3, bn3, conv4, bn4
    conv2d[_1.._3], batch_normalization[_1.._3]
                                       block{1,2,3,12}.skip, .skipbn    residual 1×1 convs

The residual convolutions are the only layers Keras' Xception leaves unnamed; Keras numbers them
per session (``conv2d_1`` in the study's Keras 2 file, ``conv2d`` in a fresh Keras 3 session),
so they are matched in file order, never by number.

Tensor layouts: Keras kernels are (kh, kw, in, out), torch's (out, in, kh, kw); a separable
convolution is a depthwise kernel (kh, kw, C, 1) → torch (C, 1, kh, kw) with groups=C, then a
pointwise kernel (1, 1, in, out) → (out, in, 1, 1).

Batch norm: Keras divides by sqrt(var + 1e-3), torch by sqrt(var + 1e-5). The difference is
added to ``running_var``, so any torch reader computes Keras' normalisation in inference
(exact up to float rounding). Keras' momentum 0.99 is torch's 0.01 (torch weights the new
batch); a state dict cannot hold it, so it is written to the file's metadata with the rest.

Max pooling: Keras pads its stride-2 3×3 pools "same" (nothing before, one after on even
sizes), timm pads one on both sides; on an even feature map the windows differ (at 224 px the
last two of the four pools, at 299 px the second). The metadata marks the file so histobench's
``imgnet`` extractor builds the model with TensorFlow-style pooling
(``layout.apply_keras_layout``); other tools reading the file, and fine-tuning, get timm's own
pooling and features that differ from Keras'.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from histobench.extractors.keras.h5weights import KerasWeights, nearest, read_keras_h5
from histobench.extractors.keras.layout import METADATA_KEY
from histobench.plugins.errors import WeightsError

KERAS_BN_EPSILON = 1e-3  # keras.layers.BatchNormalization default, used by keras Xception
TORCH_BN_EPSILON = 1e-5  # torch.nn.BatchNorm2d default, used by timm legacy_xception
KERAS_BN_MOMENTUM = 0.99  # Keras keeps 0.99 of the old statistics: torch momentum 0.01

# Keras block → (timm block, number of separable convs, does the block start with a ReLU)
_FLOW_BLOCKS = {2: (1, 2, False), 3: (2, 2, True), 4: (3, 2, True)}  # entry flow
_FLOW_BLOCKS.update({k: (k - 1, 3, True) for k in range(5, 13)})  # middle flow
_FLOW_BLOCKS[13] = (12, 2, True)  # exit flow
_RESIDUAL_BLOCKS = (1, 2, 3, 12)  # timm blocks with a 1×1 skip convolution, in Keras order


def xception_layer_map(weights: KerasWeights) -> dict[str, str]:
    """Keras layer name → timm module name, for every Xception layer with weights."""
    table = {
        "block1_conv1": "conv1",
        "block1_conv1_bn": "bn1",
        "block1_conv2": "conv2",
        "block1_conv2_bn": "bn2",
        "block14_sepconv1": "conv3",
        "block14_sepconv1_bn": "bn3",
        "block14_sepconv2": "conv4",
        "block14_sepconv2_bn": "bn4",
    }
    for keras_block, (timm_block, convs, starts_with_relu) in _FLOW_BLOCKS.items():
        for j in range(convs):
            # timm's Block.rep is [ReLU, SepConv, BN] per conv (the first ReLU dropped when
            # the block starts without one).
            index = 3 * j + (1 if starts_with_relu else 0)
            conv = f"block{keras_block}_sepconv{j + 1}"
            table[conv] = f"block{timm_block}.rep.{index}"
            table[f"{conv}_bn"] = f"block{timm_block}.rep.{index + 1}"
    skips = weights.auto_named("conv2d")
    skip_norms = weights.auto_named("batch_normalization")
    if len(skips) != len(_RESIDUAL_BLOCKS) or len(skip_norms) != len(_RESIDUAL_BLOCKS):
        raise WeightsError(
            f"{weights.path}: expected the 4 unnamed residual Conv2D/BatchNormalization layers "
            f"of Keras' Xception, found {len(skips)} and {len(skip_norms)}: not Keras Xception "
            "weights"
        )
    for block, conv, norm in zip(_RESIDUAL_BLOCKS, skips, skip_norms, strict=True):
        table[conv] = f"block{block}.skip"
        table[norm] = f"block{block}.skipbn"
    return table


def _conv(kernel: np.ndarray) -> np.ndarray:
    return kernel.transpose(3, 2, 0, 1)  # (kh, kw, in, out) → (out, in, kh, kw)


def _depthwise(kernel: np.ndarray) -> np.ndarray:
    return kernel.transpose(2, 3, 0, 1)  # (kh, kw, C, 1) → (C, 1, kh, kw)


def _layer_tensors(keras_layer: str, module: str, arrays: dict[str, np.ndarray]) -> dict:
    """One Keras layer's arrays as timm tensors (names and layouts)."""
    kinds = set(arrays)
    if kinds == {"kernel"}:
        return {f"{module}.weight": _conv(arrays["kernel"])}
    if kinds == {"depthwise_kernel", "pointwise_kernel"}:
        return {
            f"{module}.conv1.weight": _depthwise(arrays["depthwise_kernel"]),
            f"{module}.pointwise.weight": _conv(arrays["pointwise_kernel"]),
        }
    if kinds == {"gamma", "beta", "moving_mean", "moving_variance"}:
        variance = arrays["moving_variance"].astype(np.float64)
        variance += KERAS_BN_EPSILON - TORCH_BN_EPSILON
        return {
            f"{module}.weight": arrays["gamma"],
            f"{module}.bias": arrays["beta"],
            f"{module}.running_mean": arrays["moving_mean"],
            f"{module}.running_var": variance.astype(np.float32),
        }
    raise WeightsError(f"layer '{keras_layer}' holds {sorted(kinds)}: not an Xception layer")


def convert_xception(weights: KerasWeights) -> dict[str, np.ndarray]:
    """The timm ``legacy_xception`` backbone state dict (no classifier) of Keras weights."""
    table = xception_layer_map(weights)
    missing = [name for name in table if name not in weights.layers]
    if missing:
        raise WeightsError(
            f"{weights.path}: not Keras Xception weights: {len(missing)} of its layers are "
            f"missing, e.g. '{missing[0]}' (the file has: {nearest(missing[0], weights.layers)})"
        )
    state: dict[str, np.ndarray] = {}
    for keras_layer, module in table.items():
        tensors = _layer_tensors(keras_layer, module, weights.layers[keras_layer])
        state.update({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()})
    _check_shapes(weights.path, state)
    return state


def _check_shapes(source: Path, state: dict[str, np.ndarray]) -> None:
    """Every tensor must fit timm's legacy_xception (a file of another width fails here)."""
    import timm

    reference = timm.create_model("legacy_xception", pretrained=False, num_classes=0)
    expected = {
        k: tuple(v.shape)
        for k, v in reference.state_dict().items()
        if not k.endswith("num_batches_tracked")
    }
    absent = sorted(set(expected) - set(state))
    wrong = [k for k in state if k in expected and tuple(state[k].shape) != expected[k]]
    if absent or wrong:
        what = f"no '{absent[0]}'" if absent else f"'{wrong[0]}' has shape {state[wrong[0]].shape}"
        raise WeightsError(f"{source}: does not fit timm legacy_xception: {what}")


def conversion_metadata(source: Path, source_digest: str) -> dict[str, str]:
    """One metadata key holding sorted JSON: safetensors writes several keys in hash order,
    which would make the file's bytes (and so its digest and cache keys) vary run to run."""
    from histobench import __version__

    info = {
        "source": "keras-xception",
        "source_file": source.name,
        "source_sha256": source_digest,
        "maxpool": "tf-same",
        "keras_bn_epsilon": KERAS_BN_EPSILON,
        "keras_bn_momentum": KERAS_BN_MOMENTUM,
        "torch_bn_momentum": round(1.0 - KERAS_BN_MOMENTUM, 6),
        "running_var": f"Keras moving_variance + {KERAS_BN_EPSILON} - {TORCH_BN_EPSILON}",
        "histobench": __version__,
    }
    return {METADATA_KEY: json.dumps(info, sort_keys=True)}


def convert_keras_xception_file(source: Path, out: Path) -> dict[str, object]:
    """Read ``source`` (.h5), write ``out`` (.safetensors) atomically; a summary for the CLI."""
    import torch
    from safetensors.torch import save_file

    from histobench.extractors.weights import file_digest

    state = convert_xception(read_keras_h5(source))
    tensors = {k: torch.from_numpy(v) for k, v in sorted(state.items())}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        save_file(tensors, str(tmp), conversion_metadata(source, file_digest(source)))
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return {
        "source": str(source),
        "out": str(out),
        "tensors": len(tensors),
        "parameters": int(sum(v.size for v in state.values())),
        "sha256": file_digest(out),
        "timm_model": "legacy_xception",
    }
