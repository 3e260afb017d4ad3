"""BLAS threads for fold fits that run in threads of one process.

The fold fits of crc-tissue and of the SVR engine run in threads (their solvers release the GIL,
and threads share the features without copying them), and each fit calls BLAS. Left alone,
every thread's BLAS call starts one BLAS thread per core, so ``n_jobs`` threads run
``n_jobs × cores`` busy threads on ``cores`` cores. OpenBLAS's threads spin while they wait,
which makes this worse than the count suggests: crc-tissue's evaluation at the demo's size (25
fits of 172 × 1,280) took 1.17 s against 0.46 s with one BLAS thread per fit on a quiet 2-core
machine, and 17.8 s against 0.52 s when other jobs held the cores (BENCHMARKS.md). Process pools (loky) need none of this: joblib limits their
workers' BLAS threads itself.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from joblib import Parallel
from threadpoolctl import threadpool_limits


def blas_threads_per_job(n_jobs: int) -> int:
    """BLAS threads each of ``n_jobs`` concurrent fits may use without oversubscribing."""
    return max(1, (os.cpu_count() or 1) // max(1, n_jobs))


def share_cores_between(n_jobs: int) -> threadpool_limits:
    """Context manager: while it is open, BLAS uses ``cores // n_jobs`` threads per call."""
    return threadpool_limits(limits=blas_threads_per_job(n_jobs), user_api="blas")


def run_fold_jobs(calls: Iterable[Any], n_jobs: int, backend: str) -> list[Any]:
    """Run joblib ``delayed`` calls in order: in this thread for one job, else on ``backend``
    (threads with their share of the BLAS threads, or loky processes)."""
    if n_jobs == 1:
        return [f(*args, **kwargs) for f, args, kwargs in calls]
    if backend == "threading":
        with share_cores_between(n_jobs):
            return list(Parallel(n_jobs=n_jobs, backend=backend)(calls))
    return list(Parallel(n_jobs=n_jobs, backend=backend)(calls))
