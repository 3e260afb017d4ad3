"""A tiny deterministic extractor for the slide-embedding tests.

The extractor (per-channel mean and standard deviation of the preprocessed tile) costs
nothing, so the tests measure the slide pipeline, not a network; it is still sensitive to
every pixel, so a wrong tile, order or normalisation changes its features.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from histobench.plugins.specs import Extractor, Item


class ColourMoments(Extractor):
    name = "colour-moments"
    feature_dim = 6

    def __init__(self) -> None:
        self.tiles_embedded = 0
        self.batch_sizes: list[int] = []

    def identity(self) -> dict[str, Any]:
        return {"extractor": self.name, "weights_digest": "none"}

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)

    def embed(self, batch: torch.Tensor) -> torch.Tensor:
        self.tiles_embedded += len(batch)
        self.batch_sizes.append(len(batch))
        return torch.cat([batch.mean(dim=(2, 3)), batch.std(dim=(2, 3))], dim=1)


# Small tiles at a coarse target so a generated 1024×768 slide gives a few dozen tiles.
SMALL_TILING: dict[str, Any] = {"tile_px": 32, "target_mpp": 1.0, "max_tiles": 12}


def slide_items(paths: list[Path]) -> list[Item]:
    return [Item(p.stem, p, fingerprint=f"fp-{p.stem}", meta={}) for p in paths]
