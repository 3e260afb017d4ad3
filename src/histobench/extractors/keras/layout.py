"""Build a timm model the way converted Keras weights need it (no TensorFlow imported).

``bench convert keras-xception`` marks its safetensors file (metadata key ``METADATA_KEY``);
when the ``imgnet`` extractor loads such a file into timm's ``legacy_xception``, the max-pooling
layers are swapped for TensorFlow-style "same" pooling, so the torch model computes what the
Keras model computes (see ``convert.py`` for why). Fine-tuning (``bench finetune``) keeps timm's
pooling, the one its fine-tuned model is evaluated with by ``ftx``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

METADATA_KEY = "histobench.keras_conversion"


def conversion_info(path: Path) -> dict[str, Any] | None:
    """The converter's metadata of a safetensors file, or None for any other file."""
    if path.suffix != ".safetensors" or not path.is_file():
        return None
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            text = (f.metadata() or {}).get(METADATA_KEY)
        return json.loads(text) if text else None
    except Exception:  # unreadable files are reported by the weight loader itself
        return None


def apply_keras_layout(model: Any, path: Path) -> bool:
    """Give ``model`` Keras' max pooling if ``path`` holds converted Keras Xception weights;
    returns whether it did."""
    info = conversion_info(path)
    if not info or info.get("source") != "keras-xception":
        return False
    from timm.layers.pool2d_same import MaxPool2dSame
    from torch import nn

    for module in model.modules():
        for name, child in list(module.named_children()):
            if type(child) is nn.MaxPool2d and info.get("maxpool") == "tf-same":
                setattr(module, name, MaxPool2dSame(child.kernel_size, child.stride))
    return True
