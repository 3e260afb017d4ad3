"""Shared plumbing for the cross-validated estimators: fold plans and job counts."""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np

from histobench.plugins.errors import DataError


def check_assignments(assignments: np.ndarray, n: int) -> np.ndarray:
    """Validate an (R, N) plan of test-fold ids (a 1-D plan is one repeat)."""
    a = np.asarray(assignments)
    if a.ndim == 1:
        a = a[None, :]
    if a.ndim != 2 or a.shape[1] != n:
        raise DataError(f"assignments: expected shape (repeats, {n}), got {np.shape(assignments)}")
    if not np.issubdtype(a.dtype, np.integer) or a.min() < 0:
        raise DataError("assignments: expected non-negative integer fold ids")
    return a.astype(np.int64)


def iter_folds(assignments: np.ndarray) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
    """``(repeat, fold, train_idx, test_idx)`` for every non-empty test fold."""
    for r in range(assignments.shape[0]):
        for k in np.unique(assignments[r]):
            test = np.flatnonzero(assignments[r] == k)
            train = np.flatnonzero(assignments[r] != k)
            yield r, int(k), train, test


def default_n_jobs(n_jobs: int | None) -> int:
    if n_jobs is None:
        return 1
    if n_jobs < 0:
        return max(1, (os.cpu_count() or 1) + 1 + n_jobs)
    return max(1, n_jobs)
