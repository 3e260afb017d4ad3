"""A feature extractor around a headless torch model (global-average-pooled features)."""

from __future__ import annotations

from contextlib import nullcontext
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image

from histobench.plugins.fusion import fold_batchnorm
from histobench.plugins.specs import Extractor, Runtime


@dataclass(frozen=True)
class Preprocessing:
    """Image → tensor. Picklable, so data-loader workers can run it."""

    size: int = 224
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    resample: str = "bilinear"  # used only when a tile is not already size × size

    def __call__(self, image: Image.Image) -> torch.Tensor:
        if image.size != (self.size, self.size):
            image = image.resize((self.size, self.size), _RESAMPLE[self.resample])
        array = np.asarray(image, dtype=np.float32) / 255.0
        mean = np.asarray(self.mean, dtype=np.float32)
        std = np.asarray(self.std, dtype=np.float32)
        return torch.from_numpy(((array - mean) / std).transpose(2, 0, 1).copy())

    def describe(self) -> dict[str, Any]:
        return asdict(self)


_RESAMPLE = {
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
}


class TorchExtractor(Extractor):
    def __init__(
        self,
        name: str,
        model: torch.nn.Module,
        feature_dim: int,
        preprocessing: Preprocessing,
        identity: dict[str, Any],
        runtime: Runtime,
    ) -> None:
        self.name = name
        self.feature_dim = feature_dim
        self.preprocessing = preprocessing
        self._device = torch.device(runtime.device)
        self._cuda = self._device.type == "cuda"
        probe = torch.randn(
            2, 3, preprocessing.size, preprocessing.size, generator=torch.Generator().manual_seed(0)
        )
        model, folded = fold_batchnorm(model, probe)
        # Folding changes features only at float rounding level, but it is recorded in the
        # identity (and so in the cache key) because values are not bit-identical.
        self._identity = {
            **identity,
            "preprocessing": preprocessing.describe(),
            "batchnorm_folded": folded,
        }
        # channels_last is faster for these convnets on CPU too (measured: benchmarks/).
        self.model = model.eval().to(self._device).to(memory_format=torch.channels_last)

    def identity(self) -> dict[str, Any]:
        return self._identity

    @property
    def device(self) -> str:
        return str(self._device)

    def to_device(self, device: str) -> None:
        """Move the model to ``device`` (one model process per device in slide runs)."""
        self._device = torch.device(device)
        self._cuda = self._device.type == "cuda"
        self.model = self.model.to(self._device)

    @property
    def precision(self) -> str:
        return "bfloat16-autocast" if self._cuda else "float32"

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        return self.preprocessing(image)

    @torch.inference_mode()
    def embed(self, batch: torch.Tensor) -> torch.Tensor:
        batch = batch.to(self._device, non_blocking=True).contiguous(
            memory_format=torch.channels_last
        )
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if self._cuda else nullcontext()
        with autocast:
            out = self.model(batch)
        return out.float().flatten(1).cpu()
