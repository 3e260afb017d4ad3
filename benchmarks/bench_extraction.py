"""Tile extraction throughput: histobench's pipeline vs a naive one-image-at-a-time loop.

    python benchmarks/bench_extraction.py [--tiles 192] [--extractor effnet-lite0]

Both run in this process on the same tiles and the same model, with the same torch thread count
(every usable core), so they use the same cores; the pipeline goes through the feature cache
(fresh, so every tile is computed). Also sweeps batch size × memory format for the
model alone, which is how the per-device defaults were chosen. Prints a Markdown section.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from histobench.benchmark.cache import FeatureCache
from histobench.benchmark.devices import usable_cores
from histobench.benchmark.extraction import default_batch_size, default_workers, extract_tiles
from histobench.datasets.synthetic import CLASSES, synthetic_tile
from histobench.datasets.tile_folder import TileFolderOptions, load_tile_folder
from histobench.extractors.builtin import SPECS
from histobench.plugins.specs import Runtime


def make_tiles(root: Path, n: int) -> Path:
    rng = np.random.default_rng(0)
    for i in range(n):
        cls = CLASSES[i % len(CLASSES)]
        (root / cls).mkdir(parents=True, exist_ok=True)
        synthetic_tile(cls, rng).save(root / cls / f"{cls}-{i:05d}.tif")
    return root


def naive_loop(extractor, paths: list[Path]) -> float:
    """Open with PIL, to tensor, model, one image at a time (contiguous memory, float32).

    It runs the extractor's own model, batch norm already folded, so the measured gain is
    conservative: it comes from batching, memory format and the loader alone.
    """
    model = extractor.model.to(memory_format=torch.contiguous_format)
    pre = extractor.preprocessing
    start = time.perf_counter()
    with torch.inference_mode():
        for p in paths:
            x = pre(Image.open(p).convert("RGB"))[None]
            model(x)
    elapsed = time.perf_counter() - start
    extractor.model.to(memory_format=torch.channels_last)
    return len(paths) / elapsed


def model_sweep(extractor, repeats: int = 3, rounds: int = 3) -> list[tuple[int, str, float]]:
    best: dict[tuple[int, str], float] = {}
    model = extractor.model
    with torch.inference_mode():
        for _ in range(rounds):
            for fmt_name, fmt in (
                ("contiguous", torch.contiguous_format),
                ("channels_last", torch.channels_last),
            ):
                model.to(memory_format=fmt)
                for bs in (1, 4, 16, 64):
                    x = torch.randn(bs, 3, 224, 224).contiguous(memory_format=fmt)
                    model(x)  # warm-up
                    start = time.perf_counter()
                    for _ in range(repeats):
                        model(x)
                    rate = bs * repeats / (time.perf_counter() - start)
                    best[(bs, fmt_name)] = max(best.get((bs, fmt_name), 0.0), rate)
    rows = [(bs, fmt, rate) for (bs, fmt), rate in best.items()]
    model.to(memory_format=torch.channels_last)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tiles", type=int, default=192)
    parser.add_argument("--extractor", default="effnet-lite0")
    parser.add_argument("--no-sweep", action="store_true")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; best kept")
    args = parser.parse_args()
    spec = {s.name: s for s in SPECS}[args.extractor]
    # Both paths get every usable core as torch threads: the comparison is like for like.
    threads = usable_cores()
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["HISTOBENCH_QUIET"] = "1"
        root = make_tiles(Path(tmp) / "tiles", args.tiles)
        dataset = load_tile_folder(str(root), TileFolderOptions())
        runtime = Runtime("cpu")
        extractor = spec.factory(spec.options_model(), runtime)
        paths = [it.path for it in dataset.items]
        naive_loop(extractor, paths[:8])  # warm-up both paths alike
        # Interleave the two paths and keep each one's best round: on a shared machine this
        # compares them under the same background load.
        naive, pipeline, inline = 0.0, 0.0, 0.0
        inline_runtime = Runtime("cpu", num_workers=1)
        for round_ in range(args.rounds):
            naive = max(naive, naive_loop(extractor, paths))
            cache = FeatureCache(Path(tmp) / f"features{round_}", extractor.identity(), "bench")
            result = extract_tiles(extractor, dataset.items, cache, runtime)
            pipeline = max(pipeline, result.computed / result.seconds)
            cache = FeatureCache(Path(tmp) / f"inline{round_}", extractor.identity(), "bench")
            result = extract_tiles(extractor, dataset.items, cache, inline_runtime)
            inline = max(inline, result.computed / result.seconds)
        load = os.getloadavg()
        workers = default_workers("cpu")
        print(
            f"## Tile extraction ({args.extractor}, CPU, {threads} torch threads in both paths)\n"
        )
        print(
            f"{args.tiles} synthetic 224×224 TIFF tiles, best of {args.rounds} interleaved rounds; "
            f"`python benchmarks/bench_extraction.py --tiles {args.tiles}`; {usable_cores()} usable "
            f"cores, load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}\n"
        )
        print("| path | processes × torch threads | tiles/s | vs naive |")
        print("| --- | --- | ---: | ---: |")
        print(
            "| naive loop (PIL → tensor → model, 1 image at a time) | "
            f"1 × {threads} | {naive:.1f} | 1.00× |"
        )
        print(
            f"| histobench pipeline (batch {default_batch_size('cpu')}, channels_last, "
            f"{workers} loader worker(s), cache writes) | 1 × {threads} + {workers} loader(s) | "
            f"{pipeline:.1f} | {pipeline / naive:.2f}× |"
        )
        print(
            f"| same, decoding in 1 loader worker process | 1 × {threads} + 1 loader | "
            f"{inline:.1f} | {inline / naive:.2f}× |"
        )
        if not args.no_sweep:
            print("\nModel alone (random input), images/s:\n")
            print("| batch | contiguous | channels_last |")
            print("| ---: | ---: | ---: |")
            sweep = model_sweep(extractor)
            for bs in (1, 4, 16, 64):
                c = next(r for b, f, r in sweep if b == bs and f == "contiguous")
                cl = next(r for b, f, r in sweep if b == bs and f == "channels_last")
                print(f"| {bs} | {c:.1f} | {cl:.1f} |")


if __name__ == "__main__":
    main()
