"""One-vs-rest linear SVC (L2 penalty, squared hinge), all classes solved together in the primal.

The objective per class ``c`` is scikit-learn / liblinear ``LinearSVC``'s (``fit_intercept=True``,
``intercept_scaling=s``; liblinear penalises the intercept as an extra feature of value ``s``):

    0.5 ||w_c||^2 + 0.5 (b_c / s)^2 + C * sum_i max(0, 1 - y_ic (x_i . w_c + b_c))^2

with ``y_ic = +1`` for class ``c`` and ``-1`` otherwise, on features standardised with the
training rows' mean and (1/n) standard deviation (constant columns get scale 1). The squared hinge
is once differentiable, so the K problems are stacked into one smooth objective whose gradient is
two matrix products ``X @ W`` and ``X.T @ G`` of shape (n, K) -- one pass over ``X`` serves every
class -- and minimised with L-BFGS. ``dtype=np.float32`` runs those products in single precision
(about twice as fast); the optimiser state stays float64. Both products run block by block over
the rows, so each block of ``X`` is read from memory once per evaluation.

With at most half as many rows as features (``2 n <= p``, no warm start) the weights lie in the
span of the rows plus the intercept feature, and the exact minimiser is found instead by primal
Newton in that span (Chapelle, 2007): on a fixed set of margin violators the squared hinge is
quadratic, so each step is one ``|I| x |I|`` solve and the set settles in a handful of steps --
about 25x faster than L-BFGS and several times faster than liblinear on the small cohorts.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg.lapack import dposv as _dposv
from scipy.optimize import minimize
from sklearn.base import BaseEstimator, ClassifierMixin

from histobench.benchmark.errors import ConfigError, DataError

_BLOCK_ROWS = 256  # rows per block: a block of X stays in cache for both of its products


def _objective(
    theta: np.ndarray, Xs: np.ndarray, Y: np.ndarray, C: float, s2: float, dtype: type
) -> tuple[float, np.ndarray]:
    """Stacked objective and gradient; ``theta`` is the (p + 1, K) ``[W; b]`` raveled.

    The two products ``X @ W`` and ``X.T @ G`` run block by block over the rows, so each block
    of ``X`` is read from memory once per evaluation instead of twice.
    """
    n, p = Xs.shape
    K = Y.shape[1]
    Wb = theta.reshape(p + 1, K)
    W, b = Wb[:p], Wb[p]
    Wd: np.ndarray = W.astype(dtype)
    f = 0.5 * float(np.sum(W * W)) + 0.5 * float(b @ b) / s2
    gW: np.ndarray = np.zeros((p, K), dtype=dtype)
    gb = b / s2
    for s in range(0, n, _BLOCK_ROWS):
        Xb, Yb = Xs[s : s + _BLOCK_ROWS], Y[s : s + _BLOCK_ROWS]
        z = np.maximum(1.0 - Yb * ((Xb @ Wd).astype(np.float64) + b), 0.0)
        f += C * float(np.sum(z * z))
        G = -2.0 * C * Yb * z  # d loss / d margin
        gW += Xb.T @ G.astype(dtype)
        gb = gb + G.sum(axis=0)
    return f, np.concatenate([(W + gW.astype(np.float64)).ravel(), gb])


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

    ``tol`` is L-BFGS's relative objective decrease at which to stop (scipy's ``ftol``); 1e-8
    lands within a tile or two of the fully converged predictions on the study's size.
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
        tol: float = 1e-8,
        max_iter: int = 1000,
        dtype: type = np.float64,
    ) -> None:
        self.C = C
        self.intercept_scaling = intercept_scaling
        self.standardize = standardize
        self.tol = tol
        self.max_iter = max_iter
        self.dtype = dtype

    def fit(
        self, X: np.ndarray, y: np.ndarray, warm_start: np.ndarray | None = None
    ) -> FastLinearSVC:
        """Fit on ``X`` (n, p), labels ``y``; ``warm_start`` an optional (K, p + 1) initial point
        in the standardised space (the optimum is unique, so it only changes the run time)."""
        if not self.C > 0:
            raise ConfigError(f"C: must be positive, got {self.C}")
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
        C, s2 = float(self.C), float(self.intercept_scaling) ** 2

        theta0 = np.zeros((p + 1) * K) if warm_start is None else warm_start.T.ravel().copy()
        if 2 * n <= p and warm_start is None:
            # Far fewer rows than features: Newton in the span of the rows is exact and fast.
            # (Nearer n = p the active set takes many more steps to settle: at n = 1,000,
            # p = 2,048 Newton is 2x faster than L-BFGS, at n = 2,000 2x slower.)
            Wb, n_iter = _kernel_newton(Xs, Y, C, float(self.intercept_scaling))
        else:
            Xd = Xs.astype(self.dtype, copy=False)
            res = minimize(
                lambda th: _objective(th, Xd, Y, C, s2, self.dtype),
                theta0,
                jac=True,
                method="L-BFGS-B",
                options={"maxiter": self.max_iter, "gtol": 1e-8, "ftol": self.tol, "maxcor": 20},
            )
            Wb, n_iter = res.x.reshape(p + 1, K), int(res.nit)
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
