"""Primal side of the L2 squared-hinge SVC: objective, gradient, duality gap and batched L-BFGS.

Per class (liblinear's variables: ``Xa`` carries the intercept feature) the primal is

    P(w) = 0.5 ||w||^2 + C sum_i z_i^2,   z_i = max(0, 1 - y_i x_i.w)

and the dual (Hsieh et al. 2008) is ``D(a) = sum a - 0.5 ||sum_i a_i y_i x_i||^2 - sum a^2 / 4C``
for ``a >= 0``. The point ``a(w) = 2 C z(w)`` is always dual feasible, so every primal point has
a certificate ``gap(w) = P(w) - D(a(w)) >= P(w) - P*``, zero exactly at the optimum. Because
``sum_i a_i y_i x_i = w - grad P(w)`` the gap costs nothing beyond the gradient:

    gap(w) = 0.5 ||w||^2 + 2 C sum z^2 - 2 C sum z + 0.5 ||w - grad P(w)||^2.

P is 1-strongly convex, so ``||w - w*||^2 <= 2 gap(w)``: a gap bounds how far the weights (and
every decision value) can be from the unique optimum. Every solver of :class:`FastLinearSVC`
stops on the same rule, ``gap <= tol * P``, checked in float64.
"""

from __future__ import annotations

import numpy as np

BLOCK_ROWS = 256  # rows per block: a block of X stays in cache for both of its products
MEMORY = 10  # L-BFGS curvature pairs kept per class (more did not cut iterations here)


def col_dot(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->j", A, B)


def fun_grad_gap(
    Xa: np.ndarray, Y: np.ndarray, W: np.ndarray, C: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Objective (k,), gradient (p + 1, k) and duality gap (k,) of each column of ``W``.

    The two products ``X @ W`` and ``X.T @ G`` run block by block over the rows, so each block
    of ``X`` is read from memory once per evaluation, not twice; they run in ``Xa``'s dtype.
    """
    dt = Xa.dtype
    Wd = W.astype(dt)
    k = W.shape[1]
    sz, szz = np.zeros(k), np.zeros(k)
    gW = np.zeros(W.shape, dtype=dt)
    for s in range(0, Xa.shape[0], BLOCK_ROWS):
        Xb, Yb = Xa[s : s + BLOCK_ROWS], Y[s : s + BLOCK_ROWS]
        z = np.maximum(1.0 - Yb * (Xb @ Wd).astype(np.float64), 0.0)
        sz += z.sum(axis=0)
        szz += col_dot(z, z)
        gW += Xb.T @ (-2.0 * C * Yb * z).astype(dt)  # d loss / d margin, through X.T
    G = W + gW.astype(np.float64)
    ww = col_dot(W, W)
    f = 0.5 * ww + C * szz
    w_minus_g = W - G
    gap = 0.5 * ww + 2.0 * C * szz - 2.0 * C * sz + 0.5 * col_dot(w_minus_g, w_minus_g)
    return f, G, np.maximum(gap, 0.0)


def lbfgs(
    Xa: np.ndarray, Y: np.ndarray, C: float, W: np.ndarray, tol: float, max_iter: int
) -> tuple[np.ndarray, np.ndarray]:
    """Minimise every column's primal by L-BFGS until ``gap <= tol * P`` (or ``max_iter``).

    Each class has its own curvature pairs, step length and stop; only the classes still
    iterating enter the products, so one pass over ``X`` serves all of them. A class also stops
    when no step along its direction decreases the objective any more (the float precision of
    the products); the caller's float64 certificate then says whether it converged. The
    objective is strongly convex (modulus 1), so every pair has ``s.y >= ||s||^2 > 0`` and
    Armijo backtracking is a safe line search. Returns ``W`` and the iterations of each class.
    """
    p1, K = W.shape
    f, G, gap = fun_grad_gap(Xa, Y, W, C)
    S, Yp = np.zeros((MEMORY, p1, K)), np.zeros((MEMORY, p1, K))
    rho = np.zeros((MEMORY, K))  # 0 marks an empty slot: it then changes nothing below
    gamma = 1.0 / np.maximum(np.sqrt(col_dot(G, G)), 1e-300)  # first step: unit length
    n_iter = np.zeros(K, dtype=np.int64)
    done = gap <= tol * f
    for it in range(max_iter):
        c = np.flatnonzero(~done)
        if c.size == 0:
            break
        q = _direction(G[:, c], S, Yp, rho, gamma, c, it)
        Wn, fn, Gn, gn, stuck = _line_search(Xa, Y[:, c], C, W[:, c], f[c], G[:, c], q)
        done[c[stuck]] = True  # no decrease left at the products' precision
        s, yv = Wn - W[:, c], Gn - G[:, c]
        sy = col_dot(s, yv)
        slot = it % MEMORY
        S[slot][:, c], Yp[slot][:, c] = s, yv
        rho[slot, c] = np.where(sy > 0, 1.0 / np.where(sy > 0, sy, 1.0), 0.0)
        gamma[c] = np.where(sy > 0, sy / np.maximum(col_dot(yv, yv), 1e-300), gamma[c])
        W[:, c], f[c], G[:, c] = Wn, fn, Gn
        n_iter[c] += 1
        done[c] |= gn <= tol * fn
    return W, n_iter


def _direction(
    G: np.ndarray,
    S: np.ndarray,
    Yp: np.ndarray,
    rho: np.ndarray,
    gamma: np.ndarray,
    c: np.ndarray,
    it: int,
) -> np.ndarray:
    """The L-BFGS two-loop direction of the classes ``c``; steepest descent where it fails."""
    slots = [(it - 1 - j) % MEMORY for j in range(MEMORY)]  # newest first
    q = -G.copy()
    a = np.zeros((MEMORY, c.size))
    for j in slots:
        a[j] = rho[j, c] * col_dot(S[j][:, c], q)
        q -= a[j] * Yp[j][:, c]
    q *= gamma[c]
    for j in reversed(slots):
        q += (a[j] - rho[j, c] * col_dot(Yp[j][:, c], q)) * S[j][:, c]
    bad = ~(col_dot(G, q) < 0)  # lost descent to rounding: scaled steepest descent
    q[:, bad] = -gamma[c[bad]] * G[:, bad]
    return q


def _line_search(
    Xa: np.ndarray,
    Y: np.ndarray,
    C: float,
    W0: np.ndarray,
    f0: np.ndarray,
    G0: np.ndarray,
    q: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Armijo backtracking for every column at once: new W, f, G, gap, and which got stuck."""
    gd = col_dot(G0, q)
    Wn, fn, Gn = W0.copy(), f0.copy(), G0.copy()
    gn = np.full(f0.shape, np.inf)
    t = np.ones(q.shape[1])
    todo = np.arange(q.shape[1])
    stuck = np.zeros(q.shape[1], dtype=bool)
    for _ in range(20):  # each backtrack at least halves t
        Wt = W0[:, todo] + t[todo] * q[:, todo]
        ft, Gt, gt = fun_grad_gap(Xa, Y[:, todo], Wt, C)
        # A strict decrease too: near the optimum the Armijo term falls below f's rounding.
        ok = (ft <= f0[todo] + 1e-4 * t[todo] * gd[todo]) & (ft < f0[todo])
        i = todo[ok]
        Wn[:, i], fn[i], Gn[:, i], gn[i] = Wt[:, ok], ft[ok], Gt[:, ok], gt[ok]
        bt, tt = todo[~ok], t[todo[~ok]]
        if bt.size == 0:
            return Wn, fn, Gn, gn, stuck
        # Backtrack to the minimiser of the quadratic through f0, gd and ft, in [0.1 t, 0.5 t].
        curv = ft[~ok] - f0[bt] - gd[bt] * tt
        t[bt] = np.clip(-gd[bt] * tt * tt / (2.0 * np.maximum(curv, 1e-300)), 0.1 * tt, 0.5 * tt)
        todo = bt
    stuck[todo] = True
    return Wn, fn, Gn, gn, stuck
