"""A tiny deterministic extractor and a script entry point for the slide-embedding tests.

The extractor (per-channel mean and standard deviation of the preprocessed tile) costs
nothing, so the tests measure the slide pipeline, not a network; it is still sensitive to
every pixel, so a wrong tile, order or normalisation changes its features.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from histobench.benchmark.specs import Extractor, Item, Runtime


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


def main(argv: list[str]) -> None:
    """``python -m tests.wsi.embed_helpers OUT_DIR SLIDE...``: embed inline, print a summary."""
    from histobench.datasets.wsi.embed import embed_slides

    out_dir, paths = Path(argv[0]), [Path(p) for p in argv[1:]]
    result = embed_slides(
        ColourMoments(),
        slide_items(paths),
        Runtime(batch_size=4),
        tiling=SMALL_TILING,
        executor="inline",
        out_dir=out_dir,
        dtype="float16",
        chunk_tiles=5,
    )
    print(json.dumps({"computed": result.computed, "cached": result.cached}))


if __name__ == "__main__":
    main(sys.argv[1:])
