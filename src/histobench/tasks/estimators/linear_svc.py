"""One-vs-rest linear SVC (L2 penalty, squared hinge), all classes solved together in the primal.

The objective per class ``c`` is scikit-learn / liblinear ``LinearSVC``'s (``fit_intercept=True``,
``intercept_scaling=s``; liblinear penalises the intercept as an extra feature of value ``s``):

    0.5 ||w_c||^2 + 0.5 (b_c / s)^2 + C * sum_i max(0, 1 - y_ic (x_i . w_c + b_c))^2

with ``y_ic = +1`` for class ``c`` and ``-1`` otherwise, on features standardised with the
training rows' mean and (1/n) standard deviation (constant columns get scale 1). The squared hinge
is once differentiable, so the K problems are stacked into one smooth objective whose gradient is
two matrix products ``X @ W`` and ``X.T @ G`` of shape (n, K) -- one pass over ``X`` serves every
class -- and minimised with L-BFGS. ``dtype=np.float32`` runs those products in single precision
(about twice as fast); the optimiser state stays float64.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import minimize
from sklearn.base import BaseEstimator, ClassifierMixin

from histobench.benchmark.errors import ConfigError, DataError


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
        Xs = ((Xf - mean) / scale).astype(self.dtype)
        K = 1 if classes.shape[0] == 2 else classes.shape[0]
        if K == 1:
            Y = np.where(yi == 1, 1.0, -1.0)[:, None]
        else:
            Y = -np.ones((n, K))
            Y[np.arange(n), yi] = 1.0
        C, s2 = float(self.C), float(self.intercept_scaling) ** 2

        def fun(theta: np.ndarray) -> tuple[float, np.ndarray]:
            Wb = theta.reshape(p + 1, K)
            W, b = Wb[:p], Wb[p]
            M = (Xs @ W.astype(self.dtype)).astype(np.float64) + b
            z = np.maximum(1.0 - Y * M, 0.0)
            f = 0.5 * float(np.sum(W * W)) + 0.5 * float(b @ b) / s2 + C * float(np.sum(z * z))
            G = -2.0 * C * Y * z  # d loss / d margin
            gW = W + (Xs.T @ G.astype(self.dtype)).astype(np.float64)
            gb = b / s2 + G.sum(axis=0)
            return f, np.concatenate([gW.ravel(), gb])

        theta0 = np.zeros((p + 1) * K) if warm_start is None else warm_start.T.ravel().copy()
        res = minimize(
            fun,
            theta0,
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": self.max_iter, "gtol": 1e-8, "ftol": self.tol, "maxcor": 20},
        )
        theta, n_iter = res.x, int(res.nit)
        Wb = theta.reshape(p + 1, K)
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
