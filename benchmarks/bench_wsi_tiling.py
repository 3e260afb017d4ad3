"""Whole-slide throughput: read + tissue mask + Macenko (+ extraction), pipeline vs naive loops.

    python benchmarks/bench_wsi_tiling.py [--slide PATH] [--target-mpp 0.25] [--repeats 3]
        [--extract-tiles 160] [--only-extract]

Prints a Markdown section. Every configuration does the same work on the same tiles:
compute the tissue mask, choose the tiles, read each one, resize it to 224 px and
normalise it (torchstain Macenko, default reference). Measured:

* naive: one process, ``openslide.read_region`` one tile at a time at level 0, PIL resize,
  torchstain's normaliser called directly;
* naive, N processes: the same naive loop on N warm single-threaded processes, each given a
  contiguous share of the coordinates (the baseline on the same cores as an N-worker pipeline);
* pipeline, N workers: ``histobench.datasets.wsi.pipeline`` with a warm pool of N spawned processes,
  each opening the slide itself and reading a contiguous share of the coordinates from the
  best pyramid level, normalising them with the batched Macenko kernel.

A third table adds extraction with ``effnet-lite0`` (224 px). The naive loop is what a
researcher writes without histobench: ``read_region`` per tile, PIL resize, torchstain per
tile, the stock timm model (weights loaded, eval mode, no batch-norm folding) on one tile at
a time with torch's default threads. A second naive row swaps in histobench's fused model,
for transparency. The pipeline rows are ``embed_slides`` with warm ``local`` executors (1 or
2 reader processes) and the model in the main process, or in two warm single-threaded model
processes (``--devices cpu,cpu``), writing the per-slide HDF5 file as a real run does. A
last table gives single-threaded CPU ms/tile of each stage.

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

from histobench.datasets.wsi.pipeline import read_normalised_tiles_parallel  # noqa: E402
from histobench.datasets.wsi.reader import open_slide  # noqa: E402
from histobench.datasets.wsi.stain import StainConfig  # noqa: E402
from histobench.datasets.wsi.tiling import TilingConfig, plan_tiles  # noqa: E402

CMU = ROOT / ".." / "shared" / "data" / "wsi" / "CMU-1-Small-Region.svs"
CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
TILE_PX = 224
# Processes of the naive loop's parallel baseline: every core, as the pipeline uses (2 at most:
# the pools below are of 1 and 2 workers).
CORES_FOR_NAIVE = min(2, CORES)


def _init_worker() -> None:
    torch.set_num_threads(1)


def _warm(_: int) -> int:
    # Import everything a worker needs before timing starts.
    from histobench.datasets.wsi.stain import StainNormalizer

    # Also loads the numba-compiled Macenko kernel from its cache (~1 s on first call).
    rng = np.random.default_rng(0)
    StainNormalizer().normalize_array(rng.integers(60, 200, (1, 32, 32, 3), dtype=np.uint8))
    return os.getpid()


def naive_shard(path: str, size0: int, coords: np.ndarray) -> list[np.ndarray]:
    """The loop a script would write: level-0 reads, one tile at a time, torchstain per tile."""
    osr = openslide.OpenSlide(path)
    normalizer = torchstain.normalizers.MacenkoNormalizer(backend="torch")
    tiles = []
    for x, y in coords:
        tile = osr.read_region((int(x), int(y)), 0, (size0, size0)).convert("RGB")
        tile = tile.resize((TILE_PX, TILE_PX), Image.Resampling.BICUBIC)
        tensor = torch.from_numpy(np.array(tile)).permute(2, 0, 1)
        try:
            normed, _, _ = normalizer.normalize(I=tensor, stains=False)
        except RuntimeError:
            continue
        tiles.append(normed.numpy().astype(np.uint8))
    osr.close()
    return tiles


def naive(
    path: Path, config: TilingConfig, pool: Any = None, workers: int = 1
) -> tuple[int, list[np.ndarray], float]:
    """The naive loop in this process, or split over ``workers`` processes of ``pool``."""
    with open_slide(path, config.mpp_override) as slide:
        grid = plan_tiles(slide, config)  # the same mask and tiles as the pipeline
    size0 = round(grid.geometry.size_level0)
    if pool is None:
        return len(grid.coords), naive_shard(str(path), size0, grid.coords), 0.0
    executor = CpuTimingExecutor(pool)
    bounds = np.linspace(0, len(grid.coords), workers + 1).astype(int)
    futures = [
        executor.submit(naive_shard, str(path), size0, grid.coords[a:b])
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    ]
    tiles = [tile for future in futures for tile in future.result()]
    return len(grid.coords), tiles, sum(executor.cpu)


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
    methods: dict[str, Measure] = {"naive-1": lambda: naive(path, config)}
    for workers, pool in pools.items():
        if workers > 1:
            methods[f"naive-{workers}"] = lambda pool=pool, w=workers: naive(path, config, pool, w)
        methods[f"pipeline-{workers}"] = lambda pool=pool, w=workers: pipeline(
            path, config, pool, w
        )
    results = interleaved(repeats, methods)
    naive_tiles = results["naive-1"][3]
    rows = []
    for name, (t, cpu, n, tiles) in results.items():
        kind, workers = name.split("-")
        # Speed-up against the naive loop on as many processes (the same cores).
        t_naive = results[f"naive-{workers}"][0]
        if kind == "naive":
            method, read_level, verdict = f"naive loop, {workers} process(es), level 0", 0, ""
        else:
            method, read_level = f"pipeline, {workers} worker process(es)", level
            verdict = _pixels_verdict(level, tiles, naive_tiles)
        rows.append(
            f"| {label} | {target_mpp} | {method} | {read_level} | {n} | {t:.2f} | {n / t:.1f} | "
            f"{t_naive / t:.2f}× | {1000 * cpu / n:.1f} | {verdict} |"
        )
    return rows


def _pixels_verdict(level: int, tiles: list[np.ndarray], naive_tiles: list[np.ndarray]) -> str:
    if level:
        return "no (other level)"
    if len(tiles) != len(naive_tiles):
        return f"no ({len(tiles)} vs {len(naive_tiles)} tiles kept)"
    # The batched Macenko kernel rounds like torchstain up to float error: a pixel may differ
    # by 1 where a value sits on an integer boundary.
    diff = np.abs(np.stack(tiles).astype(int) - np.stack(naive_tiles))
    return f"±{diff.max()} ({(diff > 0).mean():.3%} of values)"


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} / {five:.2f} / {fifteen:.2f}"


def _children_cpu() -> float:
    """CPU seconds used so far by this process's live children (pool and model processes)."""
    import psutil

    total = 0.0
    for child in psutil.Process().children(recursive=True):
        try:
            times = child.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def stock_model() -> torch.nn.Module:
    """effnet-lite0 as a researcher loads it: timm model + weights, eval mode, no folding."""
    from histobench.extractors.backbones import build_backbone

    return build_backbone("effnet-lite0").model.eval()


def naive_extract(
    path: Path, config: TilingConfig, embed_one: Callable[[torch.Tensor], torch.Tensor], pre: Any
) -> tuple[int, list[np.ndarray], float]:
    """Level-0 read_region, PIL resize, torchstain Macenko, preprocess, model: tile by tile."""
    with open_slide(path, config.mpp_override) as slide:
        grid = plan_tiles(slide, config)  # the same mask and tiles as the pipeline
    size0 = round(grid.geometry.size_level0)
    osr = openslide.OpenSlide(str(path))
    normalizer = torchstain.normalizers.MacenkoNormalizer(backend="torch")
    features: list[np.ndarray] = []
    for x, y in grid.coords:
        tile = osr.read_region((int(x), int(y)), 0, (size0, size0)).convert("RGB")
        tile = tile.resize((TILE_PX, TILE_PX), Image.Resampling.BICUBIC)
        tensor = torch.from_numpy(np.array(tile)).permute(2, 0, 1)
        try:
            normed, _, _ = normalizer.normalize(I=tensor, stains=False)
        except RuntimeError:
            continue
        image = Image.fromarray(normed.numpy().astype(np.uint8))
        with torch.no_grad():
            features.append(embed_one(pre(image)[None]).flatten().numpy())
    osr.close()
    return len(grid.coords), features, 0.0


_worker_model: torch.nn.Module | None = None


def naive_extract_shard(path: str, size0: int, coords: np.ndarray, pre: Any) -> list[np.ndarray]:
    """The naive per-tile loop over ``coords`` in a worker process, with its own stock model."""
    global _worker_model
    if _worker_model is None:
        _worker_model = stock_model()
    osr = openslide.OpenSlide(path)
    normalizer = torchstain.normalizers.MacenkoNormalizer(backend="torch")
    features: list[np.ndarray] = []
    for x, y in coords:
        tile = osr.read_region((int(x), int(y)), 0, (size0, size0)).convert("RGB")
        tile = tile.resize((TILE_PX, TILE_PX), Image.Resampling.BICUBIC)
        tensor = torch.from_numpy(np.array(tile)).permute(2, 0, 1)
        try:
            normed, _, _ = normalizer.normalize(I=tensor, stains=False)
        except RuntimeError:
            continue
        image = Image.fromarray(normed.numpy().astype(np.uint8))
        with torch.no_grad():
            features.append(_worker_model(pre(image)[None]).flatten().numpy())
    osr.close()
    return features


def naive_extract_processes(
    path: Path, config: TilingConfig, pool: Any, workers: int, pre: Any
) -> tuple[int, list[np.ndarray], float]:
    """The naive loop split over ``workers`` single-threaded processes (contiguous shares)."""
    with open_slide(path, config.mpp_override) as slide:
        grid = plan_tiles(slide, config)
    size0 = round(grid.geometry.size_level0)
    cpu = _children_cpu()
    bounds = np.linspace(0, len(grid.coords), workers + 1).astype(int)
    futures = [
        pool.submit(naive_extract_shard, str(path), size0, grid.coords[a:b], pre)
        for a, b in zip(bounds[:-1], bounds[1:], strict=True)
    ]
    features = [row for future in futures for row in future.result()]
    return len(grid.coords), features, _children_cpu() - cpu


def pipeline_extract(
    path: Path, config: TilingConfig, extractor: Any, pool: Any, out: Path, devices: Any = None
) -> tuple[int, list[np.ndarray], float]:
    from histobench.benchmark.h5io import read_slide_features
    from histobench.datasets.wsi.embed import embed_slides
    from histobench.plugins.specs import Item, Runtime

    folder = Path(tempfile.mkdtemp(dir=out))  # fresh each round: nothing is reused
    cpu = _children_cpu()
    result = embed_slides(
        extractor,
        [Item(path.stem, path, fingerprint="bench")],
        Runtime(),  # the default batch size for the device
        tiling=config,
        executor=pool,
        out_dir=folder,
        previews=False,
        devices=devices,
    )
    assert result.ok == [0], result.skipped
    features, _, attrs = read_slide_features(folder / f"{path.stem}.h5")
    return int(attrs["n_planned_tiles"]), list(features), _children_cpu() - cpu


def stage_costs(
    path: Path, config: TilingConfig, extractor: Any, n: int = 32
) -> tuple[list[str], dict[str, float]]:
    """Single-threaded CPU ms/tile of each step (naive and pipeline variants): table rows,
    and the sum of the naive loop's steps."""
    from histobench.datasets.wsi.pipeline import read_tile_array
    from histobench.datasets.wsi.stain import StainNormalizer

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    rows = []

    def cpu_ms(func: Callable[[], Any], count: int, repeats: int = 2) -> float:
        func()  # warm
        best = float("inf")
        for _ in range(repeats):
            start = time.process_time()
            func()
            best = min(best, time.process_time() - start)
        return 1000 * best / count

    small = config.model_copy(update={"max_tiles": n})
    with open_slide(path) as slide:
        grid = plan_tiles(slide, small)
        n = len(grid.coords)
        rows.append(("tissue mask + grid (per slide, ÷ tiles)",
                     cpu_ms(lambda: plan_tiles(slide, config), config.max_tiles or n)))  # fmt: skip
        read = lambda: read_tile_array(slide, grid.coords, grid.geometry)  # noqa: E731
        rows.append(("read + resize, best level (pipeline)", cpu_ms(read, n)))
        tiles = read_tile_array(slide, grid.coords, grid.geometry)
    osr = openslide.OpenSlide(str(path))
    size0 = round(grid.geometry.size_level0)

    def naive_read() -> None:
        for x, y in grid.coords:
            osr.read_region((int(x), int(y)), 0, (size0, size0)).convert("RGB").resize(
                (TILE_PX, TILE_PX), Image.Resampling.BICUBIC
            )

    rows.append(("read_region level 0 + PIL resize (naive)", cpu_ms(naive_read, n)))
    osr.close()
    reference = torchstain.normalizers.MacenkoNormalizer(backend="torch")

    def per_tile_macenko() -> None:
        for tile in tiles:
            reference.normalize(I=torch.from_numpy(tile.copy()).permute(2, 0, 1), stains=False)

    normalizer = StainNormalizer()
    rows.append(("Macenko, torchstain per tile (naive)", cpu_ms(per_tile_macenko, n)))
    rows.append(("Macenko, batched kernel + checks (pipeline)",
                 cpu_ms(lambda: normalizer.normalize_array(tiles), n)))  # fmt: skip
    images = [Image.fromarray(t) for t in tiles]
    rows.append(("preprocess (PIL → tensor)",
                 cpu_ms(lambda: [extractor.preprocess(i) for i in images], n)))  # fmt: skip
    batch = torch.stack([extractor.preprocess(i) for i in images])
    model = stock_model()

    def stock() -> None:
        with torch.no_grad():
            for i in range(len(batch)):
                model(batch[i : i + 1])

    rows.append(("model: stock timm, batch 1 (naive)", cpu_ms(stock, n)))
    for size in (1, 4, 16):
        rows.append((f"model: histobench (folded, channels_last), batch {size}",
                     cpu_ms(lambda s=size: [extractor.embed(batch[i : i + s])
                                            for i in range(0, len(batch), s)], n)))  # fmt: skip
    torch.set_num_threads(threads)
    naive_steps = ("tissue", "(naive)", "preprocess")
    naive_sum = sum(ms for name, ms in rows if any(step in name for step in naive_steps))
    table = [
        "",
        f"Stage costs, CPU ms/tile, one thread ({n} tiles, best of 2):",
        "",
        "| stage | CPU ms/tile |",
        "| --- | ---: |",
        *[f"| {name} | {ms:.2f} |" for name, ms in rows],
    ]
    return table, {"naive_sum": naive_sum}


def bench_extract(path: Path, target_mpp: float, max_tiles: int, repeats: int) -> list[str]:
    from histobench.benchmark.devices import DeviceEmbedder
    from histobench.benchmark.executors import LocalExecutor
    from histobench.benchmark.extraction import default_batch_size
    from histobench.plugins.manager import get_plugins
    from histobench.plugins.specs import Runtime

    spec = get_plugins().extractors.get("effnet-lite0").spec
    extractor = spec.factory(spec.options_model(), Runtime())
    model = stock_model()
    config = TilingConfig(target_mpp=target_mpp, tile_px=TILE_PX, max_tiles=max_tiles)
    start = time.perf_counter()
    pools = {w: LocalExecutor(w) for w in (1, 2)}
    for pool in pools.values():
        pool.warm_up()
    # Two single-threaded model processes (--devices cpu,cpu), started once like the pools.
    models = DeviceEmbedder(extractor, ["cpu", "cpu"], default_batch_size("cpu"), cpu_threads=1)
    models.warm_up()
    startup = time.perf_counter() - start
    pre = extractor.preprocessing
    with tempfile.TemporaryDirectory() as tmp:
        methods: dict[str, Measure] = {
            "naive": lambda: naive_extract(path, config, model, pre),
            "naive-fused": lambda: naive_extract(path, config, extractor.embed, pre),
            # The naive loop's best configuration on these cores: one single-threaded process
            # per core, each with a share of the tiles.
            "naive-processes": lambda: naive_extract_processes(
                path, config, pools[CORES_FOR_NAIVE], CORES_FOR_NAIVE, pre
            ),
        }
        for w, pool in pools.items():
            methods[f"pipeline-{w}"] = lambda pool=pool: pipeline_extract(
                path, config, extractor, pool, Path(tmp), "cpu"
            )
            # The CPU default (devices "auto"): two model processes beside the readers.
            methods[f"pipeline-{w}-models"] = lambda pool=pool: pipeline_extract(
                path, config, extractor, pool, Path(tmp), models
            )
        # Warm every path once on a few tiles (first-call costs: numba cache, torch kernels).
        few = config.model_copy(update={"max_tiles": 8})
        naive_extract(path, few, model, pre)
        naive_extract_processes(path, few, pools[CORES_FOR_NAIVE], CORES_FOR_NAIVE, pre)
        for pool in pools.values():
            pipeline_extract(path, few, extractor, pool, Path(tmp), "cpu")
            pipeline_extract(path, few, extractor, pool, Path(tmp), models)
        results = interleaved(repeats, methods)
    models.close()
    for pool in pools.values():
        pool.close()
    t_naive, _, _, naive_feats = results["naive"]
    naive_mean = np.mean(naive_feats, axis=0)
    batch = default_batch_size("cpu")
    labels = {
        "naive": "naive loop: level-0 read_region, torchstain per tile, stock timm model (batch 1)",
        "naive-fused": "same naive loop with histobench's fused model (batch 1)",
        "naive-processes": f"naive loop split over {CORES_FOR_NAIVE} single-threaded processes "
        "(stock model, batch 1)",
        "pipeline-1": f"pipeline, 1 reader process + model in main (--devices cpu, batch {batch})",
        "pipeline-2": f"pipeline, 2 reader processes + model in main (--devices cpu, batch {batch})",
        "pipeline-1-models": "pipeline, 1 reader process + 2 CPU model processes "
        f"(the CPU default, batch {batch})",
        "pipeline-2-models": "pipeline, 2 reader processes + 2 CPU model processes "
        f"(the CPU default, batch {batch})",
    }
    rows = [
        "",
        f"## WSI extraction: read + mask + Macenko + effnet-lite0 ({path.name}, "
        f"{target_mpp} µm/px, ≤{max_tiles} tiles)",
        "",
        f"CPU cores: {CORES}; torch threads in this process: "
        f"{torch.get_num_threads()} (the naive loops; the pipeline's model in main uses cores "
        "− readers, at least 1); readers and model processes single-threaded and warm "
        f"(starting them took {startup:.1f} s, not counted); best of {repeats} rounds, "
        "methods alternating. CPU ms/tile counts this process and its workers. Δ mean = "
        "largest difference of the slide's mean feature against the naive loop's. Speed-up "
        "is against the first naive row; vs best naive is against the fastest naive row. "
        f"Load average before: {_load()}.",
        "",
        "| method | tiles embedded | wall s | tiles/s | speed-up | vs best naive | CPU ms/tile "
        "| Δ mean |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    t_best_naive = min(r[0] for name, r in results.items() if name.startswith("naive"))
    for name, (t, cpu, _, feats) in results.items():
        delta = float(np.abs(np.mean(feats, axis=0) - naive_mean).max())
        rows.append(
            f"| {labels[name]} | {len(feats)} | {t:.2f} | {len(feats) / t:.1f} | "
            f"{t_naive / t:.2f}× | {t_best_naive / t:.2f}× | "
            f"{1000 * cpu / max(len(feats), 1):.1f} | {delta:.1e} |"
        )
    stages, sums = stage_costs(path, config, extractor)
    # torch's default threads make the naive loop burn more CPU than its steps take on one
    # thread (intra-op threads wait on each other at batch 1) but finish sooner. The
    # comparison is only unfair to the naive loop when its wall time per tile exceeds that
    # one-thread CPU sum, i.e. a busy machine slowed it below what one thread would do.
    naive_wall = 1000 * t_naive / max(len(naive_feats), 1)
    if naive_wall > sums["naive_sum"]:
        rows += [
            "",
            f"**Invalid comparison:** the naive loop took {naive_wall:.0f} ms/tile of wall time, "
            f"more than the {sums['naive_sum']:.0f} CPU ms/tile its steps take on one thread: "
            "the machine was busy, so the speed-ups above are overstated. Rerun on a quiet "
            "machine.",
        ]
    return rows + stages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slide", type=Path, default=CMU)
    parser.add_argument("--target-mpp", type=float, default=0.25)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--no-pyramid", action="store_true")
    parser.add_argument("--extract-tiles", type=int, default=160, help="0: no extraction table")
    parser.add_argument("--only-extract", action="store_true")
    args = parser.parse_args()
    if not args.slide.is_file():
        sys.exit(f"{args.slide}: slide not found (the CMU sample lives in ../shared/data/wsi)")
    extract_rows: list[str] = []
    if args.extract_tiles:
        # The model may use every core, as a naive script's would: torch's default.
        torch.set_num_threads(CORES)
        extract_rows = bench_extract(
            args.slide, args.target_mpp, args.extract_tiles, max(1, args.repeats - 1)
        )
    if args.only_extract:
        print("\n".join(extract_rows))
        return
    torch.set_num_threads(1)

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
        f"CPU cores: {CORES}; one thread per process; best of {args.repeats}; "
        f"{TILE_PX}-px tiles; worker pools warm (starting them took {startup:.1f} s in all, "
        "not counted). Methods alternate within each round so they share the machine's load; "
        "wall and CPU times are the best round. Speed-up is wall time against the naive loop "
        "on the same slide and resolution run on as many processes (the same cores); CPU "
        f"ms/tile adds the workers' CPU time. Load average before: {_load()}.",
        "",
        "| slide | µm/px | method | level read | tiles | wall s | tiles/s | vs naive, same processes | "
        "CPU ms/tile | pixels vs naive |",
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
    print("\n".join(header + rows + extract_rows))


if __name__ == "__main__":
    main()
