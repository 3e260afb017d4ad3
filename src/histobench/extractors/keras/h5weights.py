"""Keras HDF5 weight files read as they are, with h5py only (no TensorFlow, no code executed).

The study's ImageNet weights (``xception_weights_tf_dim_ordering_tf_kernels_notop.h5``) use the
legacy Keras 2 layout, which ``save_weights``/``model.save`` still write for ``.h5`` files::

    /                          attrs: layer_names = [b"input_1", b"block1_conv1", ...]
    /block1_conv1              attrs: weight_names = [b"block1_conv1/kernel:0"]
    /block1_conv1/block1_conv1/kernel:0      (3, 3, 3, 32) float32

A full model saved as ``.h5`` holds the same tree under ``/model_weights``. Weight names are
read by their last two path parts (``<layer>/<variable>``), with or without the ``:0`` suffix
(Keras 3 writes ``block1_conv1/kernel``), so nested models read the same way.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from histobench.plugins.errors import WeightsError

# Layers Keras named itself (``Conv2D(...)`` without ``name=``): their numbers depend on what
# else the session built, so such layers are matched by order, never by number.
_AUTO_NAME = re.compile(r"^(?P<base>[a-z][a-z0-9_]*?)(?:_(?P<n>\d+))?$")


@dataclass
class KerasWeights:
    """A weight file's layers in file order: ``layers[name][variable] = array``."""

    path: Path
    layers: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    def layer(self, name: str) -> dict[str, np.ndarray]:
        if name not in self.layers:
            raise WeightsError(
                f"{self.path}: no layer '{name}' (nearest: {nearest(name, self.layers)})"
            )
        return self.layers[name]

    def auto_named(self, base: str) -> list[str]:
        """Layers Keras named ``base``, ``base_1``, ``base_2``… in file order."""
        found = []
        for name in self.layers:
            match = _AUTO_NAME.match(name)
            if match and match["base"] == base:
                found.append(name)
        return found


def nearest(name: str, names: Iterable[str], n: int = 5) -> str:
    """The names closest to ``name`` (for 'no such layer' errors), comma-separated."""
    pool = list(names)
    close = difflib.get_close_matches(name, pool, n=n, cutoff=0.4)
    return ", ".join(close or pool[:n]) or "the file has no layers"


def variable_name(weight_name: str) -> tuple[str, str]:
    """``"xception/block1_conv1/kernel:0"`` → ``("block1_conv1", "kernel")``."""
    parts = weight_name.split("/")
    variable = parts[-1].removesuffix(":0")
    layer = parts[-2] if len(parts) > 1 else ""
    return layer, variable


def _text(values: object) -> list[str]:
    return [
        v.decode("utf8") if isinstance(v, bytes) else str(v)
        for v in np.atleast_1d(np.asarray(values))
    ]


def read_keras_h5(path: Path) -> KerasWeights:
    """Every layer's arrays, by layer name, from a legacy-layout Keras ``.h5`` file."""
    import h5py

    if not path.is_file():
        raise WeightsError(f"{path}: weights file not found")
    try:
        with h5py.File(path, "r") as f:
            group = f.get("model_weights", f)
            if "layer_names" not in group.attrs:
                hint = (
                    " (a Keras 3 '.weights.h5' file: give it to keras:<Application>)"
                    if "layers" in group
                    else ""
                )
                raise WeightsError(f"{path}: not a Keras HDF5 weights file (no layer_names){hint}")
            return _read_layers(path, group)
    except WeightsError:
        raise
    except Exception as exc:  # truncated or not HDF5 at all
        detail = str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__
        raise WeightsError(f"{path}: cannot read Keras HDF5 weights ({detail})") from exc


def _read_layers(path: Path, group: object) -> KerasWeights:
    weights = KerasWeights(path)
    for layer_name in _text(group.attrs["layer_names"]):  # type: ignore[attr-defined]
        layer_group = group[layer_name]  # type: ignore[index]
        names = _text(layer_group.attrs.get("weight_names", []))
        if not names:
            continue
        for weight_name in names:
            owner, variable = variable_name(weight_name)
            # A nested model stores all its layers' weights under its own layer group.
            target = weights.layers.setdefault(owner or layer_name, {})
            if variable in target:
                raise WeightsError(f"{path}: weight '{weight_name}' appears twice")
            target[variable] = np.asarray(layer_group[weight_name])
    return weights
