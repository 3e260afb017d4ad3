"""Where the model runs while items stream in as tiles: in this process, or one process per device.

Also the thread and process budget of such a run on this machine's cores (``usable_cores``,
``default_reader_workers``, ``auto_cpu_models``, ``model_threads``), shared with the tile
pipeline (``histobench.benchmark.extraction``).

With one device the model runs here on each batch as it is cut (no copies, no start-up).
With several (``cuda:0,cuda:1``, or ``cpu,cpu`` for data parallelism on CPU) each device
gets one spawned process holding its own copy of the extractor; batches go to the least
busy one and come back as futures, so reading, the main loop and every device overlap.
Batches are cut the same way in both cases, so the features do not depend on the devices.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any

import numpy as np

from histobench.plugins.errors import ConfigError, PluginError
from histobench.plugins.specs import Extractor

# A batch is either embedded already (in-process) or on its way back from a device.
Pending = np.ndarray | Future


def usable_cores() -> int:
    """Cores this process may run on (taskset, cgroup cpusets), not all the machine's."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def resolve_devices(spec: str | Sequence[str] | None, extractor: Extractor) -> list[str]:
    """``None``/``"auto"``: every visible CUDA device when the extractor is on CUDA, else
    the extractor's device. A string is a comma-separated list (``cuda:0,cuda:1``)."""
    if spec is None or spec == "auto":
        device = str(extractor.device)
        if device.startswith("cuda"):
            import torch

            count = torch.cuda.device_count()
            return [f"cuda:{i}" for i in range(count)] if count > 1 else [device]
        return [device]
    names = [d.strip() for d in spec.split(",")] if isinstance(spec, str) else list(spec)
    names = [d for d in names if d]
    if not names:
        raise ConfigError(f"--devices {spec!r}: expected e.g. cuda:0,cuda:1 or cpu")
    for name in names:
        if name != "cpu" and not name.startswith("cuda"):
            raise ConfigError(f"--devices {spec!r}: unknown device {name!r} (cpu or cuda:N)")
    return names


def place(extractor: Extractor, device: str) -> None:
    """Move ``extractor`` to ``device``; extractors that cannot move must already be there."""
    if str(extractor.device) == device:
        return
    to_device = getattr(extractor, "to_device", None)
    if to_device is None:
        raise PluginError(
            f"extractor {extractor.name!r} runs on {extractor.device} and cannot be moved to "
            f"{device} (it has no to_device method); pass --devices {extractor.device}"
        )
    to_device(device)


def preprocess_batch(extractor: Extractor, tiles: Sequence[np.ndarray] | np.ndarray) -> Any:
    """HWC uint8 tiles → the NCHW float batch ``extractor.embed`` takes.

    For histobench's own torch extractors, with tiles already at the model's size, the
    scaling runs on the whole stacked batch: the same float32 operations as
    ``Preprocessing.__call__`` in the same order (so bit-identical), without a PIL image per
    tile, and left in NHWC memory, which is the channels_last layout the model wants
    (0.5 against 0.77 CPU ms/tile at 224 px, before the layout copy it also saves).
    Any other extractor gets its own ``preprocess`` per tile.
    """
    import torch
    from PIL import Image

    from histobench.plugins.torch import Preprocessing

    pre = getattr(extractor, "preprocessing", None)
    array = np.asarray(tiles) if not isinstance(tiles, np.ndarray) else tiles
    if (
        isinstance(pre, Preprocessing)
        and array.ndim == 4
        and array.shape[1:] == (pre.size, pre.size, 3)
        and array.dtype == np.uint8
    ):
        # In place on one float32 copy: no temporaries the size of the batch.
        batch = torch.from_numpy(array).to(torch.float32)
        batch.div_(255.0).sub_(torch.tensor(pre.mean)).div_(torch.tensor(pre.std))
        return batch.permute(0, 3, 1, 2)
    return torch.stack([extractor.preprocess(Image.fromarray(t)) for t in tiles])


def _embed(extractor: Extractor, tiles: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
    return extractor.embed(preprocess_batch(extractor, tiles)).float().numpy()


class InProcessEmbedder:
    """Preprocess + embed HWC uint8 tiles in this process, at once."""

    devices: list[str]

    def __init__(self, extractor: Extractor, batch_size: int, device: str | None = None) -> None:
        self.extractor = extractor
        self.batch_size = batch_size
        self._home = str(extractor.device)
        if device is not None:
            place(extractor, device)
        self.devices = [str(extractor.device)]
        self.tiles = 0
        self.seconds = 0.0

    def submit(self, tiles: Sequence[np.ndarray]) -> Pending:
        t0 = time.perf_counter()
        out = _embed(self.extractor, tiles)
        self.seconds += time.perf_counter() - t0
        self.tiles += len(tiles)
        return out

    def result(self, pending: Pending) -> np.ndarray:
        assert isinstance(pending, np.ndarray)
        return pending

    def close(self) -> None:
        """Give the caller its extractor back where it was."""
        place(self.extractor, self._home)


# The model process's extractor, set once by its initializer.
_worker_extractor: Extractor | None = None


def _init_model_process(extractor: Extractor, device: str, threads: int | None) -> None:
    global _worker_extractor
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    place(extractor, device)
    _worker_extractor = extractor


def _ready() -> int:
    return os.getpid()


def _embed_in_worker(tiles: np.ndarray) -> tuple[np.ndarray, float]:
    assert _worker_extractor is not None, "model process not initialised"
    start = time.perf_counter()
    return _embed(_worker_extractor, tiles), time.perf_counter() - start


class DeviceEmbedder:
    """One spawned model process per device; ``submit`` returns a future of the features.

    At most ``depth`` batches per device are in flight: enough to keep each device busy
    while the next batch travels, few enough to bound the tiles held in memory.
    """

    def __init__(
        self,
        extractor: Extractor,
        devices: Sequence[str],
        batch_size: int,
        cpu_threads: int | None = None,
        depth: int = 2,
    ) -> None:
        self.extractor = extractor
        self.batch_size = batch_size
        self.devices = list(devices)
        self.tiles = 0
        self.seconds = 0.0
        self.depth = depth
        context = multiprocessing.get_context("spawn")  # forking a torch process can hang
        # The caller's copy moves to the CPU while the processes run: each pickles it from
        # there (no CUDA IPC handles), and it does not hold a GPU the workers need.
        self._home = str(extractor.device)
        if self._home != "cpu":
            place(extractor, "cpu")
        self._pools: list[ProcessPoolExecutor] = []
        self._queued: list[deque[Future]] = []
        try:
            for device in self.devices:
                threads = cpu_threads if device == "cpu" else None
                self._pools.append(
                    ProcessPoolExecutor(
                        1,
                        mp_context=context,
                        initializer=_init_model_process,
                        initargs=(extractor, device, threads),
                    )
                )
                self._queued.append(deque())
        except BaseException:
            self.close()
            raise

    def warm_up(self) -> None:
        """Start every model process now (each imports torch and loads the model once)."""
        for future in [pool.submit(_ready) for pool in self._pools]:
            future.result()

    def _least_busy(self) -> int:
        for queue in self._queued:
            while queue and queue[0].done():
                queue.popleft()
        return min(range(len(self._pools)), key=lambda i: len(self._queued[i]))

    def submit(self, tiles: Sequence[np.ndarray]) -> Pending:
        index = self._least_busy()
        while len(self._queued[index]) >= self.depth:
            self._queued[index][0].result()  # wait for this device's oldest batch
            index = self._least_busy()
        array = np.stack(tiles) if not isinstance(tiles, np.ndarray) else tiles
        future = self._pools[index].submit(_embed_in_worker, array)
        self._queued[index].append(future)
        self.tiles += len(array)
        return future

    def result(self, pending: Pending) -> np.ndarray:
        if isinstance(pending, np.ndarray):
            return pending
        features, seconds = pending.result()
        self.seconds += seconds
        return features

    def close(self) -> None:
        for pool in self._pools:
            pool.shutdown(wait=True, cancel_futures=True)
        self._pools = []
        if self._home != "cpu":
            place(self.extractor, self._home)


def make_embedder(
    extractor: Extractor, devices: Sequence[str], batch_size: int, reader_workers: int
) -> InProcessEmbedder | DeviceEmbedder:
    """The in-process path for one device; one model process per device otherwise."""
    if len(devices) == 1:
        return InProcessEmbedder(extractor, batch_size, devices[0])
    n_cpu = sum(d == "cpu" for d in devices)
    cores = usable_cores()
    # CPU model processes share the cores the readers leave; GPU ones need a thread only.
    cpu_threads = max(1, (cores - reader_workers) // n_cpu) if n_cpu else None
    return DeviceEmbedder(extractor, devices, batch_size, cpu_threads)


def default_reader_workers(device: str) -> int:
    """Reader processes for the ``local`` executor when none is asked for.

    On CPU the model costs ~4× the reading + Macenko of a slide tile (effnet-lite0, 224 px;
    benchmarks/bench_wsi_tiling.py), so a quarter of the cores read and the rest run the
    model; a GPU model needs every core reading to keep it fed.
    """
    cores = usable_cores()
    if device.startswith("cuda"):
        return max(1, cores - 1)
    return max(1, cores // 4)


def set_torch_threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)


def auto_cpu_models(pool: Any, devices: list[str]) -> list[str]:
    """On a CPU with local reader processes, two model processes instead of one in-process model.

    Measured on the CMU slide with 2 cores (BENCHMARKS.md): 2 readers + the model in the main
    process ran at 0.99x the naive loop, 2 readers + 2 single-threaded model processes at 1.67x;
    one process's OpenMP threads stall whenever a reader takes a core from them, two
    independent processes do not. ``--devices cpu`` keeps the single in-process model.
    """
    from histobench.benchmark.executors import LocalExecutor

    if devices != ["cpu"] or not isinstance(pool, LocalExecutor) or not pool.workers:
        return devices
    return ["cpu", "cpu"] if usable_cores() >= 2 else devices


def model_threads(pool: Any, devices: Sequence[str]) -> int | None:
    """Leave the local workers their cores: returns the thread count to restore, or None.

    Measured on 2 cores: with a worker process busy, a 2-thread model in the main process
    slowed 2–10× (its OpenMP threads spin-wait on each other while one is descheduled);
    a model using the cores the workers leave free does not.
    """
    from histobench.benchmark.executors import LocalExecutor

    if not isinstance(pool, LocalExecutor) or devices[0].startswith("cuda"):
        return None
    import torch

    before = torch.get_num_threads()
    set_torch_threads(max(1, usable_cores() - pool.workers))
    return before
