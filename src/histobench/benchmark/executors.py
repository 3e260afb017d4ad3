"""Where CPU-side work (slide reading, tiling, normalisation) runs: inline, local processes, Dask.

Every executor offers the same small interface (``submit`` → an object with ``.result()``,
``map``, ``close``, context manager), so the slide pipeline is written once. The model never
runs here: it stays in the calling process, fed by results as they arrive.

Spec strings (``--executor``):

* ``local`` — a pool of spawned worker processes on this machine (default: one per core);
* ``inline`` — no workers, everything in the calling process (tests, debugging);
* ``dask-local`` — a ``distributed.LocalCluster`` started for the run and closed after;
* ``dask://HOST:PORT`` (or ``tcp://HOST:PORT``) — an existing Dask scheduler. Its workers
  must see the slide files at the same paths and have histobench installed.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from types import TracebackType
from typing import Any, Protocol

from histobench.plugins.errors import ConfigError


class ResultLike(Protocol):
    def result(self, timeout: float | None = None) -> Any: ...


class TaskExecutor:
    """Base class: ``submit`` is the one method a subclass must provide."""

    name: str = "executor"
    workers: int = 1

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> ResultLike:
        raise NotImplementedError

    def map(self, fn: Callable[..., Any], iterable: Iterable[Any]) -> Iterator[Any]:
        """``fn`` over ``iterable``, results in input order; all submitted up front."""
        futures = [self.submit(fn, item) for item in iterable]
        for future in futures:
            yield future.result()

    def describe(self) -> dict[str, Any]:
        return {"executor": self.name, "workers": self.workers}

    def close(self) -> None:
        """Release workers; closing twice is harmless."""

    def __enter__(self) -> TaskExecutor:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class InlineExecutor(TaskExecutor):
    """Runs each task at submission, in the calling process (no parallelism, no pickling)."""

    name = "inline"
    workers = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> ResultLike:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args))
        except BaseException as exc:  # delivered at .result(), like a pool would
            future.set_exception(exc)
        return future


def _init_local_worker() -> None:
    # Parallelism comes from the processes: one BLAS/OpenMP thread each avoids
    # oversubscribing the cores the model in the main process also needs.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)


def _warm() -> int:
    return os.getpid()


class LocalExecutor(TaskExecutor):
    """A pool of spawned processes. Spawned, not forked: forking a process that holds a
    multi-threaded torch runtime can deadlock in the child."""

    name = "local"

    def __init__(self, workers: int | None = None) -> None:
        self.workers = max(1, workers if workers is not None else (os.cpu_count() or 1))
        self._pool = ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_local_worker,
        )

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> ResultLike:
        return self._pool.submit(fn, *args)

    def warm_up(self) -> None:
        """Start every worker now (each imports torch once), e.g. before timing."""
        for future in [self._pool.submit(_warm) for _ in range(self.workers)]:
            future.result()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class DaskExecutor(TaskExecutor):
    """Tasks on a Dask distributed cluster: an existing scheduler or a LocalCluster."""

    def __init__(self, client: Any, cluster: Any | None = None, name: str = "dask") -> None:
        self._client = client
        self._cluster = cluster  # owned (started by us) only for dask-local
        self.name = name
        self.workers = max(1, len(client.scheduler_info().get("workers", {})))

    @classmethod
    def connect(cls, address: str, timeout: str = "10s") -> DaskExecutor:
        from distributed import Client

        try:
            client = Client(address, timeout=timeout)
        except (OSError, TimeoutError) as exc:
            raise ConfigError(
                f"--executor {address}: cannot reach the Dask scheduler: {exc}"
            ) from exc
        return cls(client, None, name=f"dask:{address}")

    @classmethod
    def local(cls, workers: int | None = None, processes: bool = True) -> DaskExecutor:
        """A LocalCluster with one single-threaded worker per core (or ``workers``).

        ``processes=False`` runs the workers as threads of this process: much faster to
        start (no interpreter per worker), at the price of sharing the GIL.
        """
        from distributed import Client, LocalCluster

        n = max(1, workers if workers is not None else (os.cpu_count() or 1))
        cluster = LocalCluster(
            n_workers=n,
            threads_per_worker=1,
            processes=processes,
            dashboard_address=None,
        )
        return cls(Client(cluster), cluster, name="dask-local")

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> ResultLike:
        # pure=False: two reads of the same region are separate tasks, never deduplicated
        # against a stale result from another run on a long-lived cluster.
        return self._client.submit(fn, *args, pure=False)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
        if self._cluster is not None:
            self._cluster.close()
        self._client = self._cluster = None


def make_executor(spec: str = "local", workers: int | None = None, **options: Any) -> TaskExecutor:
    """An executor from its spec string (see the module docstring)."""
    spec = spec.strip()
    if spec == "local":
        return LocalExecutor(workers)
    if spec == "inline":
        return InlineExecutor()
    if spec == "dask-local":
        return DaskExecutor.local(workers, processes=bool(options.get("processes", True)))
    for prefix, scheme in (("dask://", "tcp://"), ("tcp://", "tcp://"), ("tls://", "tls://")):
        if spec.startswith(prefix) and len(spec) > len(prefix):
            timeout = str(options.get("timeout", "10s"))
            return DaskExecutor.connect(scheme + spec[len(prefix) :], timeout=timeout)
    raise ConfigError(
        f"--executor {spec!r}: expected local, inline, dask-local or dask://HOST:PORT"
    )
