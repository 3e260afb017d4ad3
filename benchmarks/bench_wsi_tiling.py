"""Whole-slide tiling throughput: read + tissue mask + Macenko, pipeline vs a naive loop.

    python benchmarks/bench_wsi_tiling.py [--slide PATH] [--target-mpp 0.25] [--repeats 3]

Prints a Markdown section. Every configuration does the same work on the same tiles:
compute the tissue mask, choose the tiles, read each one, resize it to 224 px and
normalise it (torchstain Macenko, default reference). Measured:

* naive: one process, ``openslide.read_region`` one tile at a time at level 0, PIL resize,
  torchstain's normaliser called directly;
* pipeline, N workers: ``histobench.datasets.wsi`` with a warm pool of N spawned processes,
  each opening the slide itself and reading a contiguous share of the coordinates from the
  best pyramid level.

A second table uses a generated 3-level pyramid (0.25/0.5/1.0 µm/px), where reading from
the right level matters; the CMU sample slide has a single level.
"""

from __future__ import annotations

import os

# One BLAS/OpenMP thread per process: parallelism comes from worker processes, and the
# timings must not depend on how many idle cores the machine happens to have.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse  # noqa: E402
import multiprocessing  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from concurrent.futures import Future, ProcessPoolExecutor  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import openslide  # noqa: E402
import tifffile  # noqa: E402
import torch  # noqa: E402
import torchstain  # noqa: E402
from PIL import Image  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from histobench.datasets.wsi import (  # noqa: E402
    StainConfig,
    TilingConfig,
    open_slide,
    plan_tiles,
    read_normalised_tiles_parallel,
)

CMU = ROOT / ".." / "shared" / "data" / "wsi" / "CMU-1-Small-Region.svs"
TILE_PX = 224


def _init_worker() -> None:
    torch.set_num_threads(1)


def _warm(_: int) -> int:
    # Import everything a worker needs before timing starts.
    from histobench.datasets.wsi.stain import StainNormalizer

    StainNormalizer()
    return os.getpid()


def naive(path: Path, config: TilingConfig) -> tuple[int, list[np.ndarray], float]:
    """The loop a script would write: level-0 reads, one tile at a time."""
    with open_slide(path, config.mpp_override) as slide:
        grid = plan_tiles(slide, config)  # the same mask and tiles as the pipeline
    size0 = round(grid.geometry.size_level0)
    osr = openslide.OpenSlide(str(path))
    normalizer = torchstain.normalizers.MacenkoNormalizer(backend="torch")
    tiles = []
    for x, y in grid.coords:
        tile = osr.read_region((int(x), int(y)), 0, (size0, size0)).convert("RGB")
        tile = tile.resize((TILE_PX, TILE_PX), Image.Resampling.BICUBIC)
        tensor = torch.from_numpy(np.array(tile)).permute(2, 0, 1)
        try:
            normed, _, _ = normalizer.normalize(I=tensor, stains=False)
        except RuntimeError:
            continue
        tiles.append(normed.numpy().astype(np.uint8))
    osr.close()
    return len(grid.coords), tiles, 0.0


def _timed_call(func: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    start = time.process_time()
    result = func(*args)
    return result, time.process_time() - start


class _CpuTimedFuture:
    def __init__(self, future: Future, sink: list[float]) -> None:
        self._future, self._sink = future, sink

    def result(self) -> Any:
        value, cpu = self._future.result()
        self._sink.append(cpu)
        return value


class CpuTimingExecutor:
    """Wraps a pool so the CPU seconds spent inside its workers can be added up."""

    def __init__(self, pool: ProcessPoolExecutor) -> None:
        self.pool = pool
        self.cpu: list[float] = []

    def submit(self, func: Callable[..., Any], *args: Any) -> _CpuTimedFuture:
        return _CpuTimedFuture(self.pool.submit(_timed_call, func, *args), self.cpu)


def pipeline(
    path: Path, config: TilingConfig, pool: ProcessPoolExecutor, workers: int
) -> tuple[int, list[np.ndarray], float]:
    """Returns (tiles planned, tiles kept, CPU seconds spent in the workers)."""
    with open_slide(path, config.mpp_override) as slide:
        grid = plan_tiles(slide, config)
    executor = CpuTimingExecutor(pool)
    batch = read_normalised_tiles_parallel(
        executor,  # type: ignore[arg-type]  # only .submit() is used
        workers,
        path,
        grid.coords,
        grid.geometry,
        StainConfig(on_failure="skip"),
    )
    return len(grid.coords), batch.tiles, sum(executor.cpu)


Measure = Callable[[], tuple[int, list[np.ndarray], float]]


def interleaved(
    repeats: int, methods: dict[str, Measure]
) -> dict[str, tuple[float, float, int, list]]:
    """Best wall and CPU time per method, alternating methods so each sees the same load."""
    wall: dict[str, list[float]] = {name: [] for name in methods}
    cpu: dict[str, list[float]] = {name: [] for name in methods}
    last: dict[str, tuple[int, list]] = {}
    for _ in range(repeats):
        for name, func in methods.items():
            start_wall, start_cpu = time.perf_counter(), time.process_time()
            n, tiles, worker_cpu = func()
            wall[name].append(time.perf_counter() - start_wall)
            cpu[name].append(time.process_time() - start_cpu + worker_cpu)
            last[name] = (n, tiles)
    return {name: (min(wall[name]), min(cpu[name]), *last[name]) for name in methods}


def make_pyramid(path: Path, width: int = 8192, height: int = 6144) -> Path:
    """A 3-level tiled TIFF (0.25/0.5/1.0 µm/px) with textured pink/purple blobs on glass."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    inside = ((xx - width * 0.4) / (width * 0.3)) ** 2 + (
        (yy - height * 0.5) / (height * 0.35)
    ) ** 2 <= 1
    del xx, yy
    texture = rng.normal(0, 1, (height // 16, width // 16)).repeat(16, 0).repeat(16, 1)
    image = np.empty((height, width, 3), np.uint8)
    image[:] = (242, 240, 244)
    stroma = np.clip(np.array([225, 140, 185]) + 18 * texture[..., None], 0, 255).astype(np.uint8)
    image[inside] = stroma[inside]
    nuclei = inside & (rng.random((height, width), dtype=np.float32) < 0.02)
    image[nuclei] = (95, 55, 150)
    with tifffile.TiffWriter(path) as tif:
        for level in range(3):
            ppcm = 1e4 / (0.25 * 2**level)
            tif.write(
                image,
                tile=(256, 256),
                photometric="rgb",
                compression="zlib",
                resolution=(ppcm, ppcm),
                resolutionunit="CENTIMETER",
                subfiletype=1 if level else 0,
            )
            h, w = image.shape[0] // 2, image.shape[1] // 2
            image = image.reshape(h, 2, w, 2, 3).mean(axis=(1, 3)).astype(np.uint8)
    return path


def bench_slide(
    label: str, path: Path, target_mpp: float, pools: dict[int, ProcessPoolExecutor], repeats: int
) -> list[str]:
    config = TilingConfig(target_mpp=target_mpp, tile_px=TILE_PX)
    with open_slide(path) as slide:
        level = plan_tiles(slide, config).geometry.level
    methods: dict[str, Measure] = {"naive": lambda: naive(path, config)}
    for workers, pool in pools.items():
        methods[f"pipeline-{workers}"] = lambda pool=pool, w=workers: pipeline(
            path, config, pool, w
        )
    results = interleaved(repeats, methods)
    t_naive, cpu_naive, n_tiles, naive_tiles = results.pop("naive")
    rows = [
        f"| {label} | {target_mpp} | naive loop (1 process, level 0) | 0 | {n_tiles} | "
        f"{t_naive:.2f} | {n_tiles / t_naive:.1f} | 1.00× | {1000 * cpu_naive / n_tiles:.1f} | |"
    ]
    for name, (t, cpu, n, tiles) in results.items():
        assert n == n_tiles
        same = len(tiles) == len(naive_tiles) and all(
            np.array_equal(a, b) for a, b in zip(tiles, naive_tiles, strict=True)
        )
        workers = name.split("-")[1]
        verdict = "yes" if same else ("no (other level)" if level else "no")
        rows.append(
            f"| {label} | {target_mpp} | pipeline, {workers} worker(s) | {level} | {n} | "
            f"{t:.2f} | {n / t:.1f} | {t_naive / t:.2f}× | {1000 * cpu / n:.1f} | {verdict} |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slide", type=Path, default=CMU)
    parser.add_argument("--target-mpp", type=float, default=0.25)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--no-pyramid", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if not args.slide.is_file():
        sys.exit(f"{args.slide}: slide not found (the CMU sample lives in ../shared/data/wsi)")

    context = multiprocessing.get_context("spawn")
    pools: dict[int, ProcessPoolExecutor] = {}
    start = time.perf_counter()
    for workers in (int(w) for w in args.workers.split(",")):
        pools[workers] = ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker)
        list(pools[workers].map(_warm, range(workers)))
    startup = time.perf_counter() - start

    header = [
        "## WSI tiling: read + tissue mask + Macenko normalisation",
        "",
        f"CPU cores: {os.cpu_count()}; one thread per process; best of {args.repeats}; "
        f"{TILE_PX}-px tiles; worker pools warm (starting them took {startup:.1f} s in all, "
        "not counted). Methods alternate within each round so they share the machine's load; "
        "wall and CPU times are the best round. Speed-up is wall time against the naive loop "
        "on the same slide and resolution; CPU ms/tile adds the workers' CPU time.",
        "",
        "| slide | µm/px | method | level read | tiles | wall s | tiles/s | speed-up | "
        "CPU ms/tile | pixels = naive |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    rows = bench_slide(args.slide.name, args.slide, args.target_mpp, pools, args.repeats)
    if not args.no_pyramid:
        with tempfile.TemporaryDirectory() as tmp:
            pyramid = make_pyramid(Path(tmp) / "pyramid.tif")
            for mpp in (0.5, 1.0):
                rows += bench_slide(
                    "generated 8192×6144 pyramid", pyramid, mpp, pools, args.repeats
                )
    for pool in pools.values():
        pool.shutdown()
    print("\n".join(header + rows))


if __name__ == "__main__":
    main()
