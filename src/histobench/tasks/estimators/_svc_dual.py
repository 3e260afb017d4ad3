"""Compiled dual coordinate descent for the L2-penalised squared-hinge SVC (liblinear ``-s 1``).

Hsieh et al. (2008), "A dual coordinate descent method for large-scale linear SVM": per class,

    min_a 0.5 a'(Q + D) a - e'a,  a >= 0,  Q_ij = y_i y_j x_i.x_j,  D_ii = 1 / (2C),

with the primal weights kept as ``w = sum_i a_i y_i x_i`` (``x`` carries the intercept feature),
so one coordinate step costs one dot product and one axpy over a row. Rows with ``a_i = 0``
whose gradient is above the previous epoch's largest projected gradient are shrunk (skipped)
until the class meets the stopping rule on its active rows, then re-checked on all rows, as in
liblinear. All classes are swept together row by row: a row is read from memory once per epoch
for every class still holding it active (it stays in cache between the classes' updates).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, fastmath=True)
def _dot(x: np.ndarray, w: np.ndarray) -> float:
    # Accumulates in the arrays' own precision: float32 runs twice the SIMD lanes.
    acc = x[0] * w[0]
    for j in range(1, x.shape[0]):
        acc += x[j] * w[j]
    return acc


@njit(cache=True, nogil=True, fastmath=True)
def dual_cd(
    Xa: np.ndarray,
    Yt: np.ndarray,
    C: float,
    eps: float,
    max_iter: int,
    seed: int,
    W: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Solve every class's dual from ``a = 0``; fills ``W`` (K, p1), returns epochs and converged
    flags per class.

    ``Xa`` (n, p1) float32/float64 with the intercept feature; ``Yt`` (K, n) labels +-1;
    ``W`` zeros of ``Xa``'s dtype on entry (weights, dot products and updates run in that
    precision; the dual variables and gradients in float64). A class stops when the spread
    of its projected gradients over all rows, ``max PG - min PG``, is at most ``eps``
    (liblinear's dual rule), or at ``max_iter`` epochs. Each epoch visits the rows in a fresh
    random order (seeded: the answer is reproducible).
    """
    n, p1 = Xa.shape
    K = Yt.shape[0]
    diag = 0.5 / C
    qd = np.empty(n)
    for i in range(n):
        qd[i] = _dot(Xa[i], Xa[i]) + diag
    alpha = np.zeros((K, n))
    active = np.ones((K, n), dtype=np.bool_)
    n_active = np.full(K, n)
    done = np.zeros(K, dtype=np.bool_)
    pg_max_old = np.full(K, np.inf)
    pg_max = np.empty(K)
    pg_min = np.empty(K)
    epochs = np.zeros(K, dtype=np.int64)
    np.random.seed(seed)
    order = np.arange(n)
    step = np.empty(1, dtype=W.dtype)
    for _ in range(max_iter):
        if done.all():
            break
        np.random.shuffle(order)
        pg_max[:] = -np.inf
        pg_min[:] = np.inf
        for s in range(n):
            i = order[s]
            x = Xa[i]
            for c in range(K):
                if done[c] or not active[c, i]:
                    continue
                w = W[c]
                yi = Yt[c, i]
                a = alpha[c, i]
                g = yi * _dot(x, w) - 1.0 + a * diag
                pg = 0.0
                if a == 0.0:
                    if g > pg_max_old[c]:  # bound and pushing outward: shrink it
                        active[c, i] = False
                        n_active[c] -= 1
                        continue
                    if g < 0.0:
                        pg = g
                else:
                    pg = g
                pg_max[c] = max(pg_max[c], pg)
                pg_min[c] = min(pg_min[c], pg)
                if abs(pg) > 1e-12:
                    a_new = max(a - g / qd[i], 0.0)
                    alpha[c, i] = a_new
                    step[0] = (a_new - a) * yi  # cast to W's precision: no widening below
                    d = step[0]
                    for j in range(p1):
                        w[j] += d * x[j]
        for c in range(K):
            if done[c]:
                continue
            epochs[c] += 1
            if pg_max[c] - pg_min[c] <= eps:
                if n_active[c] == n:
                    done[c] = True
                else:  # converged on the active rows: re-check every row before stopping
                    active[c, :] = True
                    n_active[c] = n
                    pg_max_old[c] = np.inf
                continue
            # No upper bound on a (squared hinge), so only the a = 0 side is ever shrunk.
            pg_max_old[c] = pg_max[c] if pg_max[c] > 0.0 else np.inf
    return epochs, done
