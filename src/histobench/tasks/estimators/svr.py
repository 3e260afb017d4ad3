"""Support-vector regression with R ``e1071::svm()`` semantics, one gene or many at once.

``e1071::svm(x, y)`` for a numeric ``y`` is eps-regression on libsvm with these defaults, which
:class:`E1071SVR` reproduces on top of scikit-learn's bundled libsvm (the same C++ solver):

* ``x`` scaled with R's ``scale()``: training column means and standard deviations with the
  ``n - 1`` denominator; ``y`` scaled the same way; predictions mapped back to ``y``'s scale.
* RBF kernel with ``gamma = 1 / ncol(x)``, ``cost = 1``, ``epsilon = 0.1``, ``tolerance = 0.001``,
  shrinking on.
* Constant columns: e1071 (1.7.x) warns "Variable(s) ... constant. Cannot scale data." and then
  scales *nothing*, neither ``x`` nor ``y``. ``constant_columns="e1071"`` (default) does the same
  for parity; ``constant_columns="skip"`` leaves only the constant columns unscaled (centre 0,
  scale 1) and scales the rest and ``y``, which is what most users expect.

:func:`svr_cross_val_predict` is the multi-target engine for the LUAD-expression task: within a
(repeat, fold) the scaled training matrix and the RBF kernel do not depend on the gene, so they are
computed once and every gene is fitted on the precomputed kernel. The arithmetic per gene is the
one :class:`E1071SVR` does, so the two agree within libsvm's stopping tolerance: to ~1e-9 on
the tests' small folds, to 5e-4 on a 1,150-row fold, where the precomputed kernel's rounding
steers libsvm's working-set choices differently (its ``tolerance`` is 1e-3).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from joblib import delayed
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.svm import SVR

try:  # scikit-learn's bundled libsvm, called without the estimator's per-call validation
    from sklearn.svm import _libsvm
except ImportError:  # pragma: no cover - exercised only with a future scikit-learn
    _libsvm = None

from histobench.plugins.errors import ConfigError
from histobench.tasks.estimators._folds import check_assignments, default_n_jobs, iter_folds
from histobench.tasks.estimators._threads import run_fold_jobs
from histobench.tasks.estimators._validation import EstimatorInputError, fit_data, predict_data

ConstantColumns = Literal["e1071", "skip"]


def _as_2d_float(X: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(X, dtype=np.float64)
    if arr.ndim != 2:
        raise EstimatorInputError(
            f"{name}: expected a 2-D array (samples x features), got shape {arr.shape}"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise EstimatorInputError(f"{name}: empty array of shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise EstimatorInputError(f"{name}: contains NaN or infinite values")
    return arr


def r_scale_params(
    X: np.ndarray, constant_columns: ConstantColumns = "e1071"
) -> tuple[np.ndarray, np.ndarray, bool]:
    """Centre and scale of R's ``scale()`` as e1071 applies it; third item: whether y is scaled.

    Uses only the rows passed in (the training fold), so nothing leaks from test rows.
    """
    center = X.mean(axis=0)
    n = X.shape[0]
    # R's sd: n - 1 denominator. One row gives NA in R; treat it as constant (scale 1).
    sd = X.std(axis=0, ddof=1) if n > 1 else np.zeros(X.shape[1])
    constant = ~(sd > 0)
    if not constant.any():
        return center, sd, True
    if constant_columns == "e1071":
        # e1071 gives up on scaling altogether when any column is constant (x *and* y).
        return np.zeros(X.shape[1]), np.ones(X.shape[1]), False
    center = np.where(constant, 0.0, center)
    sd = np.where(constant, 1.0, sd)
    return center, sd, True


def _check_constant_columns(value: str) -> None:
    if value not in ("e1071", "skip"):
        raise ConfigError(f"constant_columns: expected 'e1071' or 'skip', got {value!r}")


class E1071SVR(RegressorMixin, BaseEstimator):
    """eps-regression SVR with ``e1071::svm()`` defaults (see module docstring).

    ``gamma=None`` means ``1 / n_features`` like e1071. Fitted attributes: ``x_center_``,
    ``x_scale_``, ``y_center_``, ``y_scale_``, ``scaled_`` (False when e1071 would not scale),
    ``gamma_``, ``svr_`` (the underlying :class:`sklearn.svm.SVR`), ``n_features_in_``.
    """

    def __init__(
        self,
        *,
        cost: float = 1.0,
        epsilon: float = 0.1,
        gamma: float | None = None,
        tolerance: float = 0.001,
        shrinking: bool = True,
        cache_size: float = 40.0,
        constant_columns: ConstantColumns = "e1071",
    ) -> None:
        self.cost = cost
        self.epsilon = epsilon
        self.gamma = gamma
        self.tolerance = tolerance
        self.shrinking = shrinking
        self.cache_size = cache_size
        self.constant_columns = constant_columns

    def fit(self, X: Any, y: Any) -> E1071SVR:
        _check_constant_columns(self.constant_columns)
        X, y = fit_data(self, X, y, classifier=False)
        y = y.astype(np.float64)
        center, scale, scale_y = r_scale_params(X, self.constant_columns)
        if not scale_y:
            warnings.warn(
                "constant feature column(s): e1071 cannot scale data, fitting unscaled x and y",
                RuntimeWarning,
                stacklevel=2,
            )
        y_center, y_scale = _y_scale(y, scale_y, what="y")
        self.x_center_, self.x_scale_, self.scaled_ = center, scale, scale_y
        self.y_center_, self.y_scale_ = y_center, y_scale
        self.gamma_ = 1.0 / X.shape[1] if self.gamma is None else float(self.gamma)
        self.svr_ = SVR(
            kernel="rbf",
            gamma=self.gamma_,
            C=self.cost,
            epsilon=self.epsilon,
            tol=self.tolerance,
            shrinking=self.shrinking,
            cache_size=self.cache_size,
        ).fit((X - center) / scale, (y - y_center) / y_scale)
        # libsvm's record: it stops when the maximal KKT violation is below ``tolerance``
        # (max_iter = -1: no iteration cap, so a fit that returns has met it).
        self.n_iter_ = int(np.max(self.svr_.n_iter_))
        self.converged_ = bool(self.svr_.fit_status_ == 0)
        return self

    def predict(self, X: Any) -> np.ndarray:
        X = predict_data(self, X)
        z = self.svr_.predict((X - self.x_center_) / self.x_scale_)
        return z * self.y_scale_ + self.y_center_


def _y_scale(y: np.ndarray, scale_y: bool, what: str) -> tuple[float, float]:
    if not scale_y:
        return 0.0, 1.0
    sd = float(np.std(y, ddof=1)) if y.shape[0] > 1 else 0.0
    if not sd > 0:
        # R's scale() would divide by zero and e1071 would fit NaNs: refuse instead.
        raise EstimatorInputError(
            f"{what}: constant target on the training rows, cannot scale it (e1071)"
        )
    return float(y.mean()), sd


def rbf_kernel(A: np.ndarray, B: np.ndarray, gamma: float) -> np.ndarray:
    """``exp(-gamma * ||a - b||^2)`` for all row pairs, in float64 (libsvm's own formula)."""
    sq = (A * A).sum(axis=1)[:, None] + (B * B).sum(axis=1)[None, :] - 2.0 * (A @ B.T)
    np.maximum(sq, 0.0, out=sq)  # rounding can make tiny negative distances
    return np.exp(-gamma * sq)


def _fold_predict(
    X: np.ndarray,
    Y: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    params: dict[str, object],
    where: str,
) -> np.ndarray:
    """Predict every gene on ``test`` from a fit on ``train``: one scaling, one kernel."""
    constant_columns = params["constant_columns"]
    center, scale, scale_y = r_scale_params(X[train], constant_columns)  # type: ignore[arg-type]
    Xtr = (X[train] - center) / scale
    Xte = (X[test] - center) / scale
    gamma = params["gamma"]
    gamma = 1.0 / X.shape[1] if gamma is None else float(gamma)  # type: ignore[arg-type]
    K_train = np.ascontiguousarray(rbf_kernel(Xtr, Xtr, gamma))
    K_test = rbf_kernel(Xte, Xtr, gamma)
    out = np.empty((test.shape[0], Y.shape[1]))
    fit = _precomputed_fitter(params, direct=params["libsvm"] == "direct")
    Ytr = Y[train]
    for g in range(Y.shape[1]):
        y = Ytr[:, g]
        ok = np.isfinite(y)
        if ok.all():
            K, yy = K_train, y
        else:
            # Units without a value for this gene sit out its training; the fold's x-scaling and
            # kernel (from all training units) are kept, so other genes are unaffected.
            K, yy = np.ascontiguousarray(K_train[np.ix_(ok, ok)]), y[ok]
        if yy.shape[0] < 2:
            raise EstimatorInputError(f"Y column {g}: fewer than 2 training values in {where}")
        y_center, y_scale = _y_scale(yy, scale_y, what=f"Y column {g} in {where}")
        support, dual, intercept = fit(K, (yy - y_center) / y_scale)
        Kt = K_test if ok.all() else K_test[:, ok]
        z = Kt[:, support] @ dual + intercept
        out[:, g] = z * y_scale + y_center
    return out


FitPrecomputed = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, float]]


def _precomputed_fitter(params: dict[str, object], direct: bool = True) -> FitPrecomputed:
    """eps-SVR on a precomputed kernel: ``(K, y) -> (support indices, dual coefs, intercept)``.

    Calls libsvm directly when scikit-learn exposes it: the estimator's input validation of an
    n x n kernel costs about 40% of a fit at the study's size (0.45 of 1.55 ms), repeated for
    every gene. Same solver, same arguments as ``SVR(kernel="precomputed").fit``, so the answer
    is identical (a test compares the two).
    """
    C = float(params["cost"])  # type: ignore[arg-type]
    eps = float(params["epsilon"])  # type: ignore[arg-type]
    tol = float(params["tolerance"])  # type: ignore[arg-type]
    shrinking = bool(params["shrinking"])
    cache = float(params["cache_size"])  # type: ignore[arg-type]
    if _libsvm is None or not direct:  # the public estimator (also without the private module)
        svr = SVR(
            kernel="precomputed", C=C, epsilon=eps, tol=tol, shrinking=shrinking, cache_size=cache
        )

        def fit_estimator(K: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
            svr.fit(K, y)
            return svr.support_, svr.dual_coef_[0], float(svr.intercept_[0])

        return fit_estimator
    empty = np.empty(0)
    # libsvm prints a progress line per fit unless told not to (the estimator does this on
    # every fit); the setting is process-wide.
    _libsvm.set_verbosity_wrap(0)

    def fit_libsvm(K: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        support, _, _, dual, intercept, *_rest = _libsvm.fit(
            K,
            np.ascontiguousarray(y, dtype=np.float64),
            svm_type=3,  # epsilon-SVR
            kernel="precomputed",
            C=C,
            epsilon=eps,
            tol=tol,
            shrinking=int(shrinking),
            cache_size=cache,
            sample_weight=empty,
            class_weight=empty,
            gamma=0.0,
            coef0=0.0,
            degree=3,
            nu=0.5,
            probability=0,
            max_iter=-1,
            random_seed=0,
        )
        return support, dual[0], float(intercept[0])

    return fit_libsvm


def svr_cross_val_predict(
    X: np.ndarray,
    Y: np.ndarray,
    assignments: np.ndarray,
    *,
    cost: float = 1.0,
    epsilon: float = 0.1,
    gamma: float | None = None,
    tolerance: float = 0.001,
    shrinking: bool = True,
    cache_size: float = 40.0,
    constant_columns: ConstantColumns = "e1071",
    n_jobs: int | None = 1,
    backend: Literal["threading", "loky"] = "threading",
    libsvm: Literal["direct", "public"] = "direct",
) -> np.ndarray:
    """Out-of-fold ``E1071SVR`` predictions for many targets over a repeated K-fold plan.

    ``X`` (N, p), ``Y`` (N, G), ``assignments`` (R, N) int test-fold ids. Returns (R, N, G).
    NaN in ``Y[:, g]`` drops those units from gene ``g``'s training (they are still predicted).
    Threads are the default backend: libsvm releases the GIL and threads avoid copying ``X`` to
    worker processes (see ``benchmarks/bench_estimators.py`` for the measurement).
    ``libsvm="public"`` fits through ``SVR(kernel="precomputed")`` instead of calling libsvm
    directly: the same solver and answer, slower (BENCHMARKS.md). libsvm stops when its maximal
    KKT violation is below ``tolerance`` and has no iteration cap here, so every fit converges
    to that tolerance.
    """
    _check_constant_columns(constant_columns)
    X = _as_2d_float(X, "X")
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim == 1:
        Y = Y[:, None]
    if Y.shape[0] != X.shape[0]:
        raise EstimatorInputError(f"Y: {Y.shape[0]} rows for {X.shape[0]} rows of X")
    if np.isinf(Y).any():
        raise EstimatorInputError("Y: contains infinite values")
    a = check_assignments(assignments, X.shape[0])
    params: dict[str, object] = dict(
        cost=cost,
        epsilon=epsilon,
        gamma=gamma,
        tolerance=tolerance,
        shrinking=shrinking,
        cache_size=cache_size,
        constant_columns=constant_columns,
        libsvm=libsvm,
    )
    folds = list(iter_folds(a))
    jobs = default_n_jobs(n_jobs)
    run = (
        delayed(_fold_predict)(X, Y, train, test, params, f"repeat {r} fold {k}")
        for r, k, train, test in folds
    )
    results = run_fold_jobs(run, jobs, backend)
    out = np.full((a.shape[0], X.shape[0], Y.shape[1]), np.nan)
    for (r, _k, _train, test), pred in zip(folds, results, strict=True):
        out[r, test] = pred
    return out
