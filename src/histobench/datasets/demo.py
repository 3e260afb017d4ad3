"""The demo data: synthetic tiles written once under ``HISTOBENCH_HOME/data/demo``.

Generation is deterministic (seeded per split and class), so every machine gets the same
images and the demo's results are comparable across machines.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
from pydantic import Field

from histobench.benchmark import home
from histobench.datasets.synthetic import CLASSES, synthetic_tile
from histobench.datasets.tile_folder import TileFolderOptions, load_tile_folder
from histobench.plugins.specs import Dataset, PluginOptions

GENERATOR_VERSION = 1
# Disjoint seeds: the fine-tuning split never shares a tile with the evaluation split.
SPLIT_SEEDS = {"eval": 1000, "train": 2000}


class DemoOptions(PluginOptions):
    tiles_per_class: int = Field(24, ge=2, le=2000, description="Tiles per class to generate.")
    split: str = Field("eval", pattern="^(eval|train)$", description="eval or train split.")


def demo_tiles(split: str = "eval", tiles_per_class: int = 24) -> Path:
    """Generate (once) and return the folder of a demo split."""
    root = home.data_dir() / "demo" / f"crc-{split}-{tiles_per_class}"
    marker = root / "demo.json"
    expected = {"generator": GENERATOR_VERSION, "split": split, "tiles_per_class": tiles_per_class}
    if marker.is_file() and json.loads(marker.read_text()) == expected:
        return root
    tmp = root.with_name(root.name + f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    for c, cls in enumerate(CLASSES):
        rng = np.random.default_rng([SPLIT_SEEDS[split], c])
        (tmp / cls).mkdir(parents=True)
        for i in range(tiles_per_class):
            synthetic_tile(cls, rng).save(tmp / cls / f"{cls}-{split.upper()}{i:04d}.tif")
    (tmp / "demo.json").write_text(json.dumps(expected))
    shutil.rmtree(root, ignore_errors=True)
    os.replace(tmp, root)  # appears whole or not at all
    return root


def load_demo(source: str, options: DemoOptions) -> Dataset:
    root = demo_tiles(options.split, options.tiles_per_class)
    dataset = load_tile_folder(str(root), TileFolderOptions())
    dataset.name = f"demo-crc-{options.split}"
    return dataset
