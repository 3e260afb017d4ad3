"""One-vs-rest linear SVC (L2 penalty, squared hinge): compiled dual coordinate descent, batched
L-BFGS, or exact row-space Newton, picked by the problem's shape.

The objective per class ``c`` is scikit-learn / liblinear ``LinearSVC``'s (``fit_intercept=True``,
``intercept_scaling=s``; liblinear penalises the intercept as an extra feature of value ``s``):

    0.5 ||w_c||^2 + 0.5 (b_c / s)^2 + C * sum_i max(0, 1 - y_ic (x_i . w_c + b_c))^2

with ``y_ic = +1`` for class ``c`` and ``-1`` otherwise, on features standardised with the
training rows' mean and (1/n) standard deviation (constant columns get scale 1).

``solver="auto"`` (default) chooses by rows ``n`` and features ``p``:

* ``2 n <= p`` (small cohorts): primal Newton in the span of the rows (below), exact.
* ``p/2 < n <= 4 p``: dual coordinate descent (``_svc_dual``; Hsieh et al. 2008, liblinear's
  ``-s 1`` solver with random order and shrinking), all classes swept together row by row. It
  stops when a class's projected-gradient spread is at most ``dual_tol`` (default 3e-3). If it
  runs out of ``max_iter`` epochs, L-BFGS carries on from its weights.
* ``n > 4 p``, or a ``warm_start``: batched L-BFGS (below).

Measured on the benchmark's generated fold 0 (7,180 tiles x 2,048 features x 9 classes, 5,744
training rows; ``benchmarks/bench_estimators.py``), float32, one thread, CPU seconds per fit on a
loaded 2-core machine, against the exact minimiser (Newton to a gradient of 3e-11; test accuracy
0.7904):

* dual, ``dual_tol = 3e-3``: 2.6-3.0 s, 278 epochs; objective 8e-5 (relative, worst class) above
  the minimum, weights 0.11% away, 0 test predictions different, accuracy 0.7904 (folds 1 and 2:
  3.6 and 2.7 s, +7e-5 and +8e-5 against a run at 1e-4; L-BFGS there +1.2e-4 and +1.3e-4,
  6.2 and 5.8 s). Two such fits side by side on the 2 cores took ~1.3x the CPU each (shared
  memory bandwidth; L-BFGS ~1.15x). First call compiles (~5 s; then numba's cache). At 1e-2:
  ~2.1 s, objective +8e-4, weights 0.3%, 1 prediction different; at 5e-3: +2e-4, 0.17%;
  at 1e-3: ~4.4 s, +9e-6. The weights and dot products run in ``dtype`` (float32: ~20%
  faster than float64 weights, same answer to 1e-6).
* L-BFGS, ``tol = 1e-4``: 5.4-5.7 s, 310 iterations; objective +1.2e-4, weights 0.96% away,
  9 predictions different, accuracy 0.7918.
* ``LinearSVC`` default (trust-region Newton, ``dual='auto'`` -> primal) stops at ``max_iter =
  1000`` without converging: objective 1.6% above the minimum, weights 19% away, 5% of test
  predictions different, accuracy 0.7960.

The dual wins there because the problem is nearly separable: ~1,700 of 5,744 rows per class are
support vectors, and after shrinking an epoch touches only those, while the primal problem has
Hessian condition ~1e4 (hundreds of L-BFGS passes over all rows). With many rows per feature
most rows become support vectors and the dual's condition number grows with ``n``: on generated
data it was slower than L-BFGS from 5.6 rows per feature on (5,744 x 1,024: 3.2 s against 2.5 s;
1,800 x 96: 1,800 epochs against 90 iterations) and faster at 2-4.5 (1,800 x 400: 0.11 against
0.25 s; 1,800 x 900: 0.22 against 0.95 s), hence the 4 p bound.

Batched L-BFGS: the squared hinge is once differentiable; the K problems are solved side by side,
each class with its own curvature pairs, step and stop, while every objective/gradient
evaluation of all the classes still iterating is two matrix products ``X @ W`` and ``X.T @ G``
-- one pass over ``X``, block by block over the rows so each block is read from memory once.
``dtype=np.float32`` runs those products in single precision (about twice as fast); the
optimiser state stays float64. It stops by liblinear's primal rule, ``||grad f_c(w)|| <= tol *
max(min(pos, neg), 1) / n * ||grad f_c(0)||`` (``LinearSVC``'s default ``tol = 1e-4``). Tried
for that primal problem and slower: liblinear's TRON batched over the classes, exact
active-set Newton (~50 steps of 1,700 x 1,700 solves per class), nonlinear CG with exact line
search, preconditioning by the fold's Gram matrix, and a numba row kernel skipping rows outside
the margin (1.4x per pass at half the rows, before bookkeeping).

With at most half as many rows as features (``2 n <= p``, no warm start) the weights lie in the
span of the rows plus the intercept feature, and the exact minimiser is found instead by primal
Newton in that span (Chapelle, 2007): on a fixed set of margin violators the squared hinge is
quadratic, so each step is one ``|I| x |I|`` solve and the set settles in a handful of steps --
about 25x faster than L-BFGS and several times faster than liblinear on the small cohorts.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg.lapack import dposv as _dposv
from sklearn.base import BaseEstimator, ClassifierMixin

from histobench.plugins.errors import ConfigError, DataError
from histobench.tasks.estimators._svc_dual import dual_cd

_BLOCK_ROWS = 256  # rows per block: a block of X stays in cache for both of its products
_SOLVERS = ("auto", "dual", "lbfgs")
# "auto" takes the dual solver up to this many rows per feature (module docstring: measured
# faster than L-BFGS at 2-4.5 rows per feature, slower from 5.6 on).
_DUAL_ROWS_PER_FEATURE = 4
_MEMORY = 10  # L-BFGS curvature pairs kept per class (more did not cut iterations here)


def _col_dot(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->j", A, B)


def _fun_grad(
    Xa: np.ndarray, Y: np.ndarray, W: np.ndarray, C: float
) -> tuple[np.ndarray, np.ndarray]:
    """Objective (k,) and gradient (p + 1, k) of each column of ``W``; ``Y`` holds its labels.

    ``Xa`` carries liblinear's bias feature, so each column is ``0.5 ||w||^2 + C * sum_i
    max(0, 1 - y_i x_i.w)^2``. The two products ``X @ W`` and ``X.T @ G`` run block by block
    over the rows, so each block of ``X`` is read from memory once per evaluation, not twice.
    """
    dt = Xa.dtype
    Wd = W.astype(dt)
    f = 0.5 * _col_dot(W, W)
    gW = np.zeros(W.shape, dtype=dt)
    for s in range(0, Xa.shape[0], _BLOCK_ROWS):
        Xb, Yb = Xa[s : s + _BLOCK_ROWS], Y[s : s + _BLOCK_ROWS]
        z = np.maximum(1.0 - Yb * (Xb @ Wd).astype(np.float64), 0.0)
        f += C * np.einsum("ij,ij->j", z, z)
        gW += Xb.T @ (-2.0 * C * Yb * z).astype(dt)  # d loss / d margin, through X.T
    return f, W + gW.astype(np.float64)


def _lbfgs(
    Xa: np.ndarray, Y: np.ndarray, C: float, W: np.ndarray, eps: np.ndarray, max_iter: int
) -> tuple[np.ndarray, np.ndarray]:
    """Minimise every column's objective by L-BFGS, one pass over ``X`` per step for all.

    Each class has its own curvature pairs, step length and stop; only the classes still
    iterating enter the products. A class stops by liblinear's primal rule, ``||g|| <= eps_c
    ||g(0)||``, or when no step along its direction decreases the objective any more (the
    float precision of the products). The objective is strongly convex (modulus 1), so every
    pair has ``s.y >= ||s||^2 > 0`` and Armijo backtracking is a safe line search. Returns
    ``W`` and the iterations each class took.
    """
    p1, K = W.shape
    f, G = _fun_grad(Xa, Y, W, C)
    # liblinear's reference is the gradient at zero, whatever the start.
    G_zero = _fun_grad(Xa, Y, np.zeros_like(W), C)[1] if np.any(W) else G
    g0 = np.sqrt(_col_dot(G_zero, G_zero))
    S, Yp = np.zeros((_MEMORY, p1, K)), np.zeros((_MEMORY, p1, K))
    rho = np.zeros((_MEMORY, K))  # 0 marks an empty slot: it then changes nothing below
    gamma = 1.0 / np.maximum(g0, 1e-300)  # first step: unit length along -g
    n_iter = np.zeros(K, dtype=np.int64)
    done = np.sqrt(_col_dot(G, G)) <= eps * g0
    for it in range(max_iter):
        c = np.flatnonzero(~done)
        if c.size == 0:
            break
        slots = [(it - 1 - j) % _MEMORY for j in range(_MEMORY)]  # newest first
        q = -G[:, c]
        a = np.zeros((_MEMORY, c.size))
        for j in slots:
            a[j] = rho[j, c] * _col_dot(S[j][:, c], q)
            q -= a[j] * Yp[j][:, c]
        q *= gamma[c]
        for j in reversed(slots):
            q += (a[j] - rho[j, c] * _col_dot(Yp[j][:, c], q)) * S[j][:, c]
        gd = _col_dot(G[:, c], q)
        bad = ~(gd < 0)  # lost descent to rounding: fall back to scaled steepest descent
        if bad.any():
            q[:, bad] = -gamma[c[bad]] * G[:, c[bad]]
            gd[bad] = _col_dot(G[:, c[bad]], q[:, bad])
        W0, f0, G0 = W[:, c], f[c], G[:, c]
        Wn, fn, Gn = W0.copy(), f0.copy(), G0.copy()
        t = np.ones(c.size)
        todo = np.arange(c.size)
        for _ in range(20):  # each backtrack at least halves t
            Wt = W0[:, todo] + t[todo] * q[:, todo]
            ft, Gt = _fun_grad(Xa, Y[:, c[todo]], Wt, C)
            # A strict decrease too: near the optimum the Armijo term falls below f's rounding.
            ok = (ft <= f0[todo] + 1e-4 * t[todo] * gd[todo]) & (ft < f0[todo])
            Wn[:, todo[ok]], fn[todo[ok]], Gn[:, todo[ok]] = Wt[:, ok], ft[ok], Gt[:, ok]
            bt, tt = todo[~ok], t[todo[~ok]]
            if bt.size == 0:
                break
            # Backtrack to the minimiser of the quadratic through f0, gd and ft, kept in
            # [0.1 t, 0.5 t].
            curv = ft[~ok] - f0[bt] - gd[bt] * tt
            t[bt] = np.clip(
                -gd[bt] * tt * tt / (2.0 * np.maximum(curv, 1e-300)), 0.1 * tt, 0.5 * tt
            )
            todo = bt
        else:
            done[c[todo]] = True  # no decrease left at the products' precision
        s, yv = Wn - W0, Gn - G0
        sy = _col_dot(s, yv)
        slot = it % _MEMORY
        S[slot][:, c], Yp[slot][:, c] = s, yv
        rho[slot, c] = np.where(sy > 0, 1.0 / np.where(sy > 0, sy, 1.0), 0.0)
        gamma[c] = np.where(sy > 0, sy / np.maximum(_col_dot(yv, yv), 1e-300), gamma[c])
        W[:, c], f[c], G[:, c] = Wn, fn, Gn
        n_iter[c] += 1
        done[c] |= np.sqrt(_col_dot(Gn, Gn)) <= eps[c] * g0[c]
    return W, n_iter


def _solve_pd(A: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """``A^-1 rhs`` for a symmetric positive definite ``A`` (Cholesky, LU as a fallback)."""
    _, x, info = _dposv(A, rhs)
    return x if info == 0 else np.linalg.solve(A, rhs)


def _kernel_newton(
    Xs: np.ndarray, Y: np.ndarray, C: float, scaling: float, max_iter: int = 100
) -> tuple[np.ndarray, int]:
    """Exact minimiser for a wide ``X`` by primal Newton in the span of its rows (Chapelle 2007).

    With the intercept as an extra feature of value ``s`` the weights are ``X_aug.T @ beta``;
    on a fixed set ``I`` of margin violators the squared hinge is quadratic and its minimiser
    solves ``(K_II + I / 2C) beta_I = y_I``. Newton steps (with backtracking on the primal
    objective) change ``I`` until it is stable, which takes a handful of n x n solves instead
    of hundreds of passes over a wide ``X``. Returns ``[W; b]`` (p + 1, K) and the largest
    number of Newton steps a class took.
    """
    n, p = Xs.shape
    Xa = np.hstack([Xs, np.full((n, 1), scaling)])
    Kmat = Xa @ Xa.T
    out = np.empty((p + 1, Y.shape[1]))
    steps = 0
    for c in range(Y.shape[1]):
        y = Y[:, c]

        def obj(beta: np.ndarray, y: np.ndarray = y) -> tuple[float, np.ndarray]:
            m = Kmat @ beta
            z = np.maximum(1.0 - y * m, 0.0)
            return 0.5 * float(beta @ m) + C * float(z @ z), m

        beta = np.zeros(n)
        f, m = obj(beta)
        for it in range(max_iter):
            steps = max(steps, it + 1)
            active = np.flatnonzero(y * m < 1.0)
            new = np.zeros(n)
            if active.size:
                A = Kmat[np.ix_(active, active)]
                A[np.diag_indices_from(A)] += 1.0 / (2.0 * C)
                new[active] = _solve_pd(A, y[active])
            step, f_new, m_new = 1.0, *obj(new)
            while f_new > f and step > 1e-10:
                step *= 0.5
                f_new, m_new = obj(beta + step * (new - beta))
            if f_new >= f - 1e-15 * max(1.0, abs(f)):
                break
            beta, f, m = beta + step * (new - beta), f_new, m_new
        wa = Xa.T @ beta
        out[:p, c] = wa[:p]
        out[p, c] = wa[p] * scaling  # b = s * w_aug
    return out, steps


class FastLinearSVC(ClassifierMixin, BaseEstimator):
    """Fast one-vs-rest linear SVC; ``fit``, ``predict``, ``decision_function``, ``classes_``.

    ``solver``: ``"auto"`` (by shape, module docstring), ``"dual"`` or ``"lbfgs"``. ``tol`` is
    liblinear's primal tolerance for L-BFGS (``LinearSVC(tol=...)``): stop when each class's
    gradient norm is below ``tol * max(min(pos, neg), 1) / n`` times its norm at zero.
    ``dual_tol`` bounds the dual solver's projected-gradient spread (liblinear's dual rule);
    ``max_iter`` caps L-BFGS iterations or dual epochs.
    Fitted attributes: ``classes_``, ``coef_`` (K, p) and ``intercept_`` (K,) on the original
    feature scale, ``mean_`` and ``scale_`` (training-fold standardisation), ``n_iter_``.
    With two classes there is one decision function, like scikit-learn.
    """

    def __init__(
        self,
        *,
        C: float = 1.0,
        intercept_scaling: float = 1.0,
        standardize: bool = True,
        tol: float = 1e-4,
        max_iter: int = 1000,
        dtype: type = np.float64,
        solver: str = "auto",
        dual_tol: float = 3e-3,
    ) -> None:
        self.C = C
        self.intercept_scaling = intercept_scaling
        self.standardize = standardize
        self.tol = tol
        self.max_iter = max_iter
        self.dtype = dtype
        self.solver = solver
        self.dual_tol = dual_tol

    def fit(
        self, X: np.ndarray, y: np.ndarray, warm_start: np.ndarray | None = None
    ) -> FastLinearSVC:
        """Fit on ``X`` (n, p), labels ``y``; ``warm_start`` an optional (K, p + 1) initial point
        in the standardised space (the optimum is unique, so it only changes the run time)."""
        if not self.C > 0:
            raise ConfigError(f"C: must be positive, got {self.C}")
        if self.solver not in _SOLVERS:
            raise ConfigError(f"solver: expected one of {_SOLVERS}, got {self.solver!r}")
        if not self.dual_tol > 0:
            raise ConfigError(f"dual_tol: must be positive, got {self.dual_tol}")
        if self.solver == "dual" and warm_start is not None:
            raise ConfigError("warm_start: the dual solver starts from a = 0; use solver='lbfgs'")
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[0] == 0:
            raise DataError(f"X: expected a non-empty 2-D array, got shape {X.shape}")
        y = np.asarray(y).ravel()
        if y.shape[0] != X.shape[0]:
            raise DataError(f"y: {y.shape[0]} labels for {X.shape[0]} rows of X")
        classes, yi = np.unique(y, return_inverse=True)
        if classes.shape[0] < 2:
            raise DataError(f"y: need at least 2 classes, got {classes.shape[0]}")
        Xf = np.asarray(X, dtype=np.float64)
        if not np.all(np.isfinite(Xf)):
            raise DataError("X: contains NaN or infinite values")
        n, p = Xf.shape
        if self.standardize:
            mean = Xf.mean(axis=0)
            scale = Xf.std(axis=0)
            scale[~(scale > 0)] = 1.0
        else:
            mean, scale = np.zeros(p), np.ones(p)
        Xs = (Xf - mean) / scale
        K = 1 if classes.shape[0] == 2 else classes.shape[0]
        if K == 1:
            Y = np.where(yi == 1, 1.0, -1.0)[:, None]
        else:
            Y = -np.ones((n, K))
            Y[np.arange(n), yi] = 1.0
        C = float(self.C)

        s = float(self.intercept_scaling)
        solver = self.solver
        if solver == "auto":
            # Far fewer rows than features: Newton in the span of the rows is exact and fast.
            # (Nearer n = p the active set takes many more steps to settle: at n = 1,000,
            # p = 2,048 Newton is 2x faster than L-BFGS, at n = 2,000 2x slower.)
            # More rows than features: dual coordinate descent (module docstring). A warm
            # start is a primal point, which only L-BFGS can use.
            if warm_start is not None:
                solver = "lbfgs"
            elif 2 * n <= p:
                solver = "newton"
            else:
                solver = "dual" if n <= _DUAL_ROWS_PER_FEATURE * p else "lbfgs"
        if solver == "newton":
            Wb, n_iter = _kernel_newton(Xs, Y, C, s)
        else:
            # liblinear's variables: the bias is the weight of an extra feature of value s.
            Xa = np.empty((n, p + 1), dtype=self.dtype)
            Xa[:, :p], Xa[:, p] = Xs, s
            n_iter, W0 = 0, None
            if solver == "dual":
                W = np.zeros((K, p + 1), dtype=self.dtype)
                Yt = np.ascontiguousarray(Y.T)
                epochs, done = dual_cd(Xa, Yt, C, float(self.dual_tol), int(self.max_iter), 0, W)
                Wb, n_iter = W.T.astype(np.float64), int(epochs.max())
                if self.solver == "auto" and not done.all():
                    # Out of epochs (the dual is slow when most rows end up support vectors):
                    # L-BFGS carries on from the dual's weights to its own primal stopping rule.
                    solver, W0 = "lbfgs", Wb
            if solver == "lbfgs":
                if W0 is None:
                    W0 = np.zeros((p + 1, K)) if warm_start is None else warm_start.T.copy()
                    W0[p] /= s
                pos = (Y > 0).sum(axis=0)
                eps = float(self.tol) * np.maximum(np.minimum(pos, n - pos), 1) / n
                Wb, iters = _lbfgs(Xa, Y, C, W0, eps, self.max_iter)
                n_iter += int(iters.max())
            Wb[p] *= s
        self.classes_ = classes
        self.mean_, self.scale_ = mean, scale
        self.coef_std_ = Wb.T.copy()  # (K, p + 1) standardised space, reusable as warm_start
        self.coef_ = (Wb[:p] / scale[:, None]).T
        self.intercept_ = Wb[p] - self.coef_ @ mean
        self.n_iter_ = n_iter
        self.n_features_in_ = p
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise DataError(f"X: expected {self.n_features_in_} features, got shape {X.shape}")
        d = X @ self.coef_.T + self.intercept_
        return d[:, 0] if d.shape[1] == 1 else d

    def predict(self, X: np.ndarray) -> np.ndarray:
        d = self.decision_function(X)
        idx = (d > 0).astype(int) if d.ndim == 1 else d.argmax(axis=1)
        return self.classes_[idx]
