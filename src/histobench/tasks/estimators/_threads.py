"""BLAS threads for fold fits that run in threads of one process.

The fold fits of crc-tissue and of the SVR engine run in threads (their solvers release the GIL,
and threads share the features without copying them), and each fit calls BLAS. Left alone,
every thread's BLAS call starts one BLAS thread per core, so ``n_jobs`` threads run
``n_jobs × cores`` busy threads on ``cores`` cores. OpenBLAS's threads spin while they wait,
which makes this worse than the count suggests: the demo's crc-tissue evaluation (25 fits of
172 × 1,280) took 44.7 s against 13.0 s with one BLAS thread per fit, on 2 cores shared with
other jobs (BENCHMARKS.md). Process pools (loky) need none of this: joblib limits their
workers' BLAS threads itself.
"""

from __future__ import annotations

import os

from threadpoolctl import threadpool_limits


def blas_threads_per_job(n_jobs: int) -> int:
    """BLAS threads each of ``n_jobs`` concurrent fits may use without oversubscribing."""
    return max(1, (os.cpu_count() or 1) // max(1, n_jobs))


def share_cores_between(n_jobs: int) -> threadpool_limits:
    """Context manager: while it is open, BLAS uses ``cores // n_jobs`` threads per call."""
    return threadpool_limits(limits=blas_threads_per_job(n_jobs), user_api="blas")
