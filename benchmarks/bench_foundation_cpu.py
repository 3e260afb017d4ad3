"""What a foundation model costs per tile on this machine's CPU (float32, random weights).

    python benchmarks/bench_foundation_cpu.py [--models uni,h-optimus-0] [--tiles 4]

Each model is the recipe's full-size network, loaded through histobench's strict loader from a
random-weight checkpoint in its publisher's layout (weights do not change the cost), embedding
real CRC tiles in batches of 4 (the CPU default). The embedded default extractor
(effnet-lite0) is timed in the same run on the same tiles as the baseline. Prints Markdown.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.extractors.foundation.publisher import crc_tiles, write_snapshot  # noqa: E402

from histobench.extractors.builtin import SPECS  # noqa: E402
from histobench.extractors.foundation.extractor import (  # noqa: E402
    FoundationExtractor,
    FoundationOptions,
)
from histobench.extractors.foundation.registry import RECIPES  # noqa: E402
from histobench.plugins.specs import Extractor, Runtime  # noqa: E402


def per_tile(extractor: Extractor, tiles: list[Path]) -> float:
    batch = torch.stack([extractor.preprocess(Image.open(t)) for t in tiles])
    extractor.embed(batch[:4])  # warm-up at the timed batch shape
    start = time.perf_counter()
    for i in range(0, len(tiles), 4):
        extractor.embed(batch[i : i + 4])
    return (time.perf_counter() - start) / len(tiles)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="uni,h-optimus-0")
    parser.add_argument("--tiles", type=int, default=4)
    args = parser.parse_args()
    tiles = (crc_tiles(9) * args.tiles)[: args.tiles]
    baseline = next(s for s in SPECS if s.name == "effnet-lite0")
    rows = [
        (
            "effnet-lite0 (baseline)",
            per_tile(baseline.factory(baseline.options_model(), Runtime()), tiles),
        )
    ]
    for name in args.models.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            path, state = write_snapshot(RECIPES[name], Path(tmp) / name)
            del state
            extractor = FoundationExtractor(
                RECIPES[name], FoundationOptions(weights=path), Runtime()
            )
            rows.append((f"{name} ({RECIPES[name].architecture})", per_tile(extractor, tiles)))
            del extractor
    print(
        f"torch threads {torch.get_num_threads()}, load {os.getloadavg()[0]:.1f}, {args.tiles} tiles"
    )
    print("| model | s per tile (CPU, fp32) |\n| --- | ---: |")
    for label, seconds in rows:
        print(f"| {label} | {seconds:.2f} |")


if __name__ == "__main__":
    main()
