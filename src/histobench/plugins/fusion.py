"""Inference-time folding of batch norm into the preceding convolution.

In eval mode a BatchNorm after a Conv2d is an affine map per channel, so it can be folded into
the convolution's weights and bias: one operator instead of two (measured about 20% of
EfficientNet-Lite0's CPU time, benchmarks/bench_extraction.py). Pairs are found as adjacent
children (the layout timm and torchvision use); because adjacency does not prove the data flow,
the folded model is checked against the original on a probe batch and discarded if it differs.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def _fold_pair(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> None:
    assert bn.running_mean is not None and bn.running_var is not None
    scale = (bn.weight if bn.affine else torch.ones_like(bn.running_var)) / torch.sqrt(
        bn.running_var + bn.eps
    )
    shift = bn.bias if bn.affine else torch.zeros_like(bn.running_mean)
    bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    with torch.no_grad():
        conv.weight.mul_(scale.reshape(-1, 1, 1, 1))
        conv.bias = nn.Parameter((bias - bn.running_mean) * scale + shift)


def _after_norm(bn: nn.BatchNorm2d) -> nn.Module:
    """What the norm layer still does once its affine map lives in the conv (timm's
    BatchNormAct2d also applies dropout and an activation)."""
    rest = [
        getattr(bn, name)
        for name in ("drop", "act")
        if isinstance(getattr(bn, name, None), nn.Module)
    ]
    return nn.Sequential(*rest) if rest else nn.Identity()


def fold_batchnorm(
    model: nn.Module, probe: torch.Tensor, rtol: float = 1e-3
) -> tuple[nn.Module, int]:
    """A copy of ``model`` (in eval mode) with conv→batch-norm pairs folded, and how many.

    Returns the original model when nothing folds or the folded one does not reproduce the
    original's output on ``probe`` (max abs error ≤ rtol × max |output|).
    """
    model = model.eval()
    folded = copy.deepcopy(model)
    count = 0
    for parent in folded.modules():
        names = list(parent._modules)
        for first, second in zip(names, names[1:], strict=False):
            conv, bn = parent._modules[first], parent._modules[second]
            if (
                isinstance(conv, nn.Conv2d)
                and isinstance(bn, nn.BatchNorm2d)
                and bn.track_running_stats
                and bn.running_mean is not None
                and conv.out_channels == bn.num_features
            ):
                _fold_pair(conv, bn)
                parent._modules[second] = _after_norm(bn)
                count += 1
    if count == 0:
        return model, 0
    with torch.inference_mode():
        expected, got = model(probe), folded(probe)
    if (got - expected).abs().max() > rtol * expected.abs().max().clamp_min(1e-6):
        return model, 0
    return folded, count
