"""L1 logistic regression with R ``glmnet`` semantics (``family="binomial"``, ``alpha=1``).

What is reproduced from glmnet 4.1 (``lognet2n`` in its Fortran core and ``cv.glmnet``):

* Standardisation with weights ``1/n``: ``xs = sqrt(mean((x - mean(x))^2))`` (the 1/n variance);
  coefficients are returned on the original scale; the intercept is not penalised; constant
  columns are excluded (coefficient 0), like glmnet's ``ju``.
* Objective ``-loglik / n + lambda * ||b_std||_1``.
* Lambda sequence: ``lambda_max = max_j |x_std_j . (y - ybar)| / n``, then ``nlambda`` values
  log-spaced down to ``lambda_min_ratio * lambda_max`` (0.01 when ``n < p``, else 1e-4).
* Path truncation, exactly glmnet's rules for a computed sequence: after the 5th lambda stop when
  the deviance ratio exceeds 0.999 or grew by less than 1e-5 since the previous lambda; at any
  lambda stop when the fit saturates (``sum p(1-p)/n <= vmin``, glmnet's ``pmin = 1e-9``). The
  lambda that triggers a stop is kept, as in glmnet. A user-supplied sequence (the CV folds) is
  only cut by saturation.
* ``cv.glmnet`` (4.1, ``alignment="lambda"``): the full-data path is fitted first and gives the
  lambdas that are scored; each fold fits its *own* default path (with the truncation rules) and
  is evaluated at the full-data lambdas by ``predict.glmnet``'s linear interpolation in lambda
  (clamped to the fold's range). ``fold_path="full"`` gives the glmnet < 4 behaviour instead
  (folds fitted on the full-data sequence, a short path padded with its last fit). Binomial
  deviance with probabilities clipped to [1e-5, 1 - 1e-5]; fold-wise ("grouped") mean and standard error;
  ``lambda.min`` = largest lambda at the minimum mean deviance, ``lambda.1se`` = largest lambda
  whose mean is within one standard error of it.

The solver differs from glmnet's (the solution is the same). glmnet runs coordinate descent
inside IRLS and stops at ``thresh = 1e-7``; on these problems (n < p, correlated columns, fits
close to separation at the end of the path) that is slow and a few 1e-4 from the optimum. We
solve each lambda to the exact minimiser instead, so glmnet's answer is within its tolerance of
ours:

* Default (``solver="compiled"``, :mod:`._glmnet_kernels`, numba): an active-set Newton method.
  For the current active set and signs, the stationarity equations are solved by Newton steps
  whose Cholesky factor is reused across steps and lambdas (chord iteration with Anderson
  acceleration; the factor follows the active set by row appends and rank-one deletions, and is
  rebuilt when the iteration slows down). A step that crosses zero drops the variable
  (projected step if it lowers the objective, else the step stops at the first crossing, as in
  feature-sign search). Violators of the KKT conditions join the active set; the check over all
  columns runs on a float32 copy with a rigorous rounding bound and reuses the bound
  ``|g_j(r) - g_j(r')| <= ||r - r'|| / sqrt(n)`` to skip columns that cannot violate, computing
  exact products only for the rest. A lambda is done when the stationarity residual is below
  ``1000 * thresh * lambda`` (1e-9 lambda by default; two 1-D Newton steps then zero the
  intercept's gradient to rounding) and no column violates the KKT conditions. The full-data
  path and the fold paths of ``cv.glmnet`` share one transposed copy of ``X``; folds select
  rows inside the solver. The solver reports instead of raising when it cannot finish a path
  (collinear active columns, an active set as large as ``n``); that path is then refitted by
  the reference solver.
* ``solver="reference"`` (numpy): proximal Newton (IRLS) restricted to a working set (the
  ever-active variables plus the sequential strong set), each quadratic sub-problem solved
  exactly by feature-sign search on its small Gram matrix (scikit-learn's compiled coordinate
  descent as its fallback), then a full KKT check; converged on glmnet's criterion at
  ``thresh = 1e-12``. About 6x slower (``benchmarks/bench_estimators.py``); kept as the
  fallback and as the reference in the tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from joblib import delayed
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import Tags
from sklearn.utils.multiclass import type_of_target

from histobench.plugins.errors import ConfigError
from histobench.tasks.estimators._folds import check_assignments, default_n_jobs, iter_folds
from histobench.tasks.estimators._glmnet_common import (
    LogisticPath,
    lambda_sequence,
    sigmoid,
    standardize,
)
from histobench.tasks.estimators._glmnet_path import Design, default_lambdas, fit_rows
from histobench.tasks.estimators._threads import run_fold_jobs
from histobench.tasks.estimators._validation import EstimatorInputError, fit_data, predict_data

__all__ = [
    "GlmnetLogisticCV",
    "LogisticPath",
    "cv_logistic_lasso",
    "kkt_residual",
    "lambda_sequence",
    "lasso_cross_val_predict",
    "lasso_cross_val_predict_many",
    "logistic_lasso_path",
]

Rule = Literal["min", "1se"]
FoldPath = Literal["own", "full"]
Solver = Literal["compiled", "reference"]

_CV_PMIN = 1e-5  # cv.glmnet's clipping of probabilities in the binomial deviance
# Paths are solved to a stationarity residual of 1000 * thresh * lambda: 1e-9 lambda by default.
THRESH = 1e-12
# The inner folds' paths of the outer cross-validation, whose held-out deviance only chooses
# lambda: 1e-5 lambda, still far inside glmnet's own stopping point (its default thresh 1e-7
# leaves fits a few 1e-4 from the optimum); the chosen model's path keeps THRESH. Measured on
# 344 x 2,048 cohorts (null and planted labels, 9 genes x 25 outer fits each): predictions
# identical to inner folds solved to 1e-9 lambda in all 450 outer fits, 14-19 % less CPU.
FOLD_THRESH = 1e-8


def _binary_y(y: np.ndarray, where: str = "y") -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y).ravel()
    if y.dtype.kind == "f" and np.isnan(y).any():
        raise EstimatorInputError(f"{where}: contains NaN labels")
    classes = np.unique(y)
    if classes.shape[0] != 2:
        # scikit-learn's wording for a binary-only classifier (its estimator checks match it).
        kind = "one class" if classes.shape[0] == 1 else type_of_target(y, input_name=where)
        raise EstimatorInputError(
            f"{where}: Only binary classification is supported. The type of the target is "
            f"{kind}; need exactly 2 classes, got {classes.shape[0]} "
            f"({', '.join(map(str, classes[:5]))})"
        )
    return (y == classes[1]).astype(np.float64), classes


def _check_X(X: np.ndarray, n: int | None = None) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise EstimatorInputError(f"X: expected a non-empty 2-D array, got shape {X.shape}")
    if n is not None and X.shape[0] != n:
        raise EstimatorInputError(f"X: {X.shape[0]} rows for {n} labels")
    if not np.all(np.isfinite(X)):
        raise EstimatorInputError("X: contains NaN or infinite values")
    return X


def logistic_lasso_path(
    X: np.ndarray,
    y: np.ndarray,
    *,
    lambdas: Sequence[float] | np.ndarray | None = None,
    nlambda: int = 100,
    lambda_min_ratio: float | None = None,
    thresh: float = THRESH,
    max_newton: int = 100,
    solver: Solver = "compiled",
) -> LogisticPath:
    """``glmnet(x, y, family="binomial")`` (alpha 1, standardize TRUE). ``y`` coded 0/1.

    ``solver="compiled"`` (default) runs the numba active-set Newton solver and falls back to
    the numpy ``"reference"`` solver for a path it reports it cannot finish; both converge to
    the same minimiser.
    """
    X = _check_X(X)
    y = np.asarray(y, dtype=np.float64).ravel()
    if y.shape[0] != X.shape[0]:
        raise EstimatorInputError(f"y: {y.shape[0]} labels for {X.shape[0]} rows of X")
    if solver not in ("compiled", "reference"):
        raise ConfigError(f"solver: expected 'compiled' or 'reference', got {solver!r}")
    design = Design.of(X) if solver == "compiled" else None
    rows = np.arange(X.shape[0])
    return fit_rows(X, design, rows, y, lambdas, nlambda, lambda_min_ratio, thresh, max_newton)


def _cv_deviance(y: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """cv.lognet's per-observation binomial deviance; ``eta`` (n, L)."""
    prob = np.clip(sigmoid(eta), _CV_PMIN, 1.0 - _CV_PMIN)
    return -2.0 * (y[:, None] * np.log(prob) + (1.0 - y[:, None]) * np.log(1.0 - prob))


def _interp_lambda(values: np.ndarray, lambdas: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Columns of ``values`` (one per decreasing ``lambdas``) linearly interpolated at ``s``."""
    if lambdas.shape[0] == 1:
        return np.repeat(values, s.shape[0], axis=1)
    pos = np.interp(s, lambdas[::-1], np.arange(lambdas.shape[0], dtype=np.float64)[::-1])
    left = np.floor(pos).astype(int)
    right = np.minimum(left + 1, lambdas.shape[0] - 1)
    frac = pos - left  # weight of the right-hand (smaller) lambda
    return values[:, left] * (1.0 - frac) + values[:, right] * frac


def make_foldid(n: int, n_folds: int, rng: np.random.Generator) -> np.ndarray:
    """Balanced random fold ids 1..n_folds, like ``sample(rep(seq(nfolds), length = n))``."""
    return rng.permutation(np.arange(n) % n_folds) + 1


@dataclass
class CVResult:
    path: LogisticPath
    cv_mean: np.ndarray
    cv_se: np.ndarray
    index_min: int
    index_1se: int


def cv_logistic_lasso(
    X: np.ndarray,
    y01: np.ndarray,
    foldid: np.ndarray,
    *,
    nlambda: int = 100,
    lambda_min_ratio: float | None = None,
    thresh: float = THRESH,
    fold_path: FoldPath = "own",
    solver: Solver = "compiled",
    full_path: bool = True,
    design: Design | None = None,
    fold_thresh: float | None = None,
) -> CVResult:
    """``cv.glmnet(x, y, family="binomial", foldid=foldid, type.measure="deviance")``.

    The full-data path and the fold paths share one transposed copy of ``X``; folds select
    their rows inside the compiled solver instead of copying the matrix. ``design``: that
    copy, made by the caller (``Design.of(X)``) to share it between targets. ``fold_thresh``:
    the fold paths' tolerance, when it differs from the full-data path's ``thresh``.

    ``full_path=False`` (``fold_path="own"`` only) fits the full-data path only down to the
    lambda the deviance chooses, which is all a prediction needs: the folds are scored first
    at the full-data sequence (its lambdas depend on ``lambda_max`` alone), then the full-data
    path is fitted down to the first minimum. If glmnet's stop rules end that path earlier,
    the minimum is taken over the lambdas it kept, exactly as with the whole path. The
    chosen lambda and model are the same; ``path``, ``cv_mean`` and ``cv_se`` end there.
    """
    if solver not in ("compiled", "reference"):
        raise ConfigError(f"solver: expected 'compiled' or 'reference', got {solver!r}")
    X = np.asarray(X, dtype=np.float64)
    y01 = np.asarray(y01, dtype=np.float64).ravel()
    folds = np.unique(foldid)
    if folds.shape[0] < 3:
        raise ConfigError(f"foldid: cv.glmnet needs at least 3 folds, got {folds.shape[0]}")
    if solver == "compiled" and design is None:
        design = Design.of(X)
    elif solver == "reference":
        design = None
    every_row = np.arange(X.shape[0])
    lazy = not full_path and fold_path == "own"
    path: LogisticPath | None = None
    if lazy:
        lambdas = default_lambdas(X, design, every_row, y01, nlambda, lambda_min_ratio)
    else:
        path = fit_rows(X, design, every_row, y01, None, nlambda, lambda_min_ratio, thresh)
        lambdas = path.lambdas
    eta = _fold_predictions(X, y01, foldid, folds, design, lambdas, nlambda, lambda_min_ratio,
                            thresh if fold_thresh is None else fold_thresh, fold_path)  # fmt: skip
    raw = _cv_deviance(y01, eta)
    means = np.stack([raw[foldid == f].mean(axis=0) for f in folds])  # (K, L)
    weights = np.array([np.sum(foldid == f) for f in folds], dtype=np.float64)
    cvm = weights @ means / weights.sum()
    cvsd = np.sqrt((weights @ (means - cvm) ** 2) / weights.sum() / (folds.shape[0] - 1))
    if path is None:
        first_min = int(np.flatnonzero(cvm <= cvm.min())[0])
        path = fit_rows(X, design, every_row, y01, None, nlambda, lambda_min_ratio, thresh,
                        max_lambdas=first_min + 1)  # fmt: skip
        cvm, cvsd = cvm[: path.lambdas.shape[0]], cvsd[: path.lambdas.shape[0]]
    idx_min = int(np.flatnonzero(cvm <= cvm.min())[0])  # lambdas decrease: first = largest
    idx_1se = int(np.flatnonzero(cvm <= cvm[idx_min] + cvsd[idx_min])[0])
    return CVResult(path, cvm, cvsd, idx_min, idx_1se)


def _fold_predictions(
    X: np.ndarray,
    y01: np.ndarray,
    foldid: np.ndarray,
    folds: np.ndarray,
    design: Design | None,
    lambdas: np.ndarray,
    nlambda: int,
    lambda_min_ratio: float | None,
    thresh: float,
    fold_path: FoldPath,
) -> np.ndarray:
    """Every row's out-of-fold linear predictor at the full-data ``lambdas``: (n, L)."""
    eta = np.empty((X.shape[0], lambdas.shape[0]))
    for f in folds:
        test = foldid == f
        ytr = y01[~test]
        if ytr.min() == ytr.max():
            raise EstimatorInputError(
                f"foldid: inner fold {f} leaves one class in its training rows"
            )
        rows = np.flatnonzero(~test)
        if fold_path == "own":
            # glmnet >= 4: each fold fits its own default path; predictions at the full-data
            # lambdas interpolate its coefficients linearly in lambda (predict.glmnet's
            # lambda.interp), clamped to the fold's lambda range.
            fit = fit_rows(X, design, rows, ytr, None, nlambda, lambda_min_ratio, thresh)
            eta[test] = _interp_lambda(fit.decision_function(X[test]), fit.lambdas, lambdas)
        else:
            # glmnet < 4: folds reuse the full-data sequence; a path cut short is padded.
            fit = fit_rows(X, design, rows, ytr, lambdas, nlambda, None, thresh)
            e = fit.decision_function(X[test])
            eta[test, : e.shape[1]] = e
            eta[test, e.shape[1] :] = e[:, -1:]
    return eta


KKT_TOL = 1e-6  # certified: the chosen model's KKT residual is at most this times lambda


def kkt_residual(X: np.ndarray, y01: np.ndarray, coef: np.ndarray, b0: float, lam: float) -> float:
    """Largest violation of the optimality conditions at ``lam``, relative to ``lam``.

    On glmnet's standardised scale, ``g_j = x_std_j . (y - p) / n`` must equal ``lam sign(b_j)``
    where ``b_j != 0`` and lie in ``[-lam, lam]`` where ``b_j = 0``; the intercept's gradient
    ``mean(y - p)`` must vanish. Constant columns are excluded, as in the fit.
    """
    Xs, _, xs, keep = standardize(X)
    resid = y01 - sigmoid(X @ coef + b0)
    g = resid @ Xs / X.shape[0]
    b = coef[keep] * xs[keep]
    viol = np.where(b != 0, np.abs(g - lam * np.sign(b)), np.maximum(np.abs(g) - lam, 0.0))
    worst = max(float(np.max(viol, initial=0.0)), abs(float(resid.mean())))
    return worst / lam if lam > 0 else worst


class GlmnetLogisticCV(ClassifierMixin, BaseEstimator):
    """``cv.glmnet(family="binomial", alpha=1)`` as a scikit-learn classifier.

    Fitted attributes: ``classes_``, ``lambdas_`` (full-data path), ``lambda_`` (chosen by
    ``rule``), ``lambda_min_``, ``lambda_1se_``, ``cv_mean_``, ``cv_se_``, ``dev_ratio_``,
    ``coef_`` (1, p) and ``intercept_`` (1,) on the original scale, ``path_``, ``foldid_``,
    ``kkt_residual_`` (the chosen model's optimality certificate, relative to ``lambda_``) and
    ``converged_`` (``kkt_residual_ <= KKT_TOL``). Binary labels only (the tags say so).
    ``full_path=False``: the full-data path (``path_``, ``lambdas_``, ``cv_mean_``, ...) ends at
    the chosen lambda; the fitted model is the same (see :func:`cv_logistic_lasso`).
    """

    def __init__(
        self,
        *,
        n_folds: int = 10,
        foldid: np.ndarray | None = None,
        rule: Rule = "min",
        nlambda: int = 100,
        lambda_min_ratio: float | None = None,
        thresh: float = THRESH,
        fold_path: FoldPath = "own",
        random_state: int | None = None,
        solver: Solver = "compiled",
        full_path: bool = True,
    ) -> None:
        self.n_folds = n_folds
        self.foldid = foldid
        self.rule = rule
        self.nlambda = nlambda
        self.lambda_min_ratio = lambda_min_ratio
        self.thresh = thresh
        self.fold_path = fold_path
        self.random_state = random_state
        self.solver = solver
        self.full_path = full_path

    def fit(self, X: Any, y: Any) -> GlmnetLogisticCV:
        if self.rule not in ("min", "1se"):
            raise ConfigError(f"rule: expected 'min' or '1se', got {self.rule!r}")
        if self.fold_path not in ("own", "full"):
            raise ConfigError(f"fold_path: expected 'own' or 'full', got {self.fold_path!r}")
        X, y = fit_data(self, X, y, classifier=True)
        y01, classes = _binary_y(y)
        if self.foldid is not None:
            foldid = np.asarray(self.foldid).ravel()
            if foldid.shape[0] != X.shape[0]:
                raise ConfigError(f"foldid: {foldid.shape[0]} ids for {X.shape[0]} rows")
        else:
            if self.n_folds < 3:
                raise ConfigError(f"n_folds: expected at least 3, got {self.n_folds}")
            if self.n_folds > X.shape[0]:
                raise EstimatorInputError(
                    f"X: n_samples={X.shape[0]} is fewer than n_folds={self.n_folds}"
                )
            foldid = make_foldid(X.shape[0], self.n_folds, np.random.default_rng(self.random_state))
        res = cv_logistic_lasso(
            X,
            y01,
            foldid,
            nlambda=self.nlambda,
            lambda_min_ratio=self.lambda_min_ratio,
            thresh=self.thresh,
            fold_path=self.fold_path,
            solver=self.solver,
            full_path=self.full_path,
        )
        idx = res.index_min if self.rule == "min" else res.index_1se
        self.classes_ = classes
        self.foldid_ = foldid
        self.path_ = res.path
        self.lambdas_ = res.path.lambdas
        self.dev_ratio_ = res.path.dev_ratio
        self.cv_mean_, self.cv_se_ = res.cv_mean, res.cv_se
        self.lambda_min_ = float(self.lambdas_[res.index_min])
        self.lambda_1se_ = float(self.lambdas_[res.index_1se])
        self.lambda_index_ = idx
        self.lambda_ = float(self.lambdas_[idx])
        self.coef_ = res.path.coefs[idx][None, :].copy()
        self.intercept_ = np.array([res.path.intercepts[idx]])
        # The certificate of the chosen model: KKT residual at lambda_, relative to lambda_.
        self.kkt_residual_ = kkt_residual(X, y01, self.coef_[0], self.intercept_[0], self.lambda_)
        self.converged_ = bool(self.kkt_residual_ <= KKT_TOL)
        return self

    def decision_function(self, X: Any) -> np.ndarray:
        X = predict_data(self, X)
        return X @ self.coef_[0] + self.intercept_[0]

    def predict_proba(self, X: Any) -> np.ndarray:
        p1 = sigmoid(self.decision_function(X))
        return np.column_stack([1.0 - p1, p1])

    def predict(self, X: Any) -> np.ndarray:
        positive = self.decision_function(X) > 0  # checks the fit before classes_ is read
        return self.classes_[positive.astype(int)]

    def __sklearn_tags__(self) -> Tags:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False  # binomial glmnet: two classes only
        return tags


# The keyword options the outer-CV engine passes on to cv_logistic_lasso.
_CV_OPTIONS = {"nlambda", "lambda_min_ratio", "thresh", "fold_path", "solver"}


def _outer_fold(
    X: np.ndarray,
    Y: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    inner_folds: int,
    rule: Rule,
    seed: int,
    r: int,
    k: int,
    kwargs: dict[str, Any],
) -> tuple[np.ndarray, list[str | None]]:
    """One outer fold for every target (columns of ``Y``, 0/1): the test rows' P(y = 1),
    (T, n_test), and per target the error that stopped it (None if none).

    The targets share the fold's data layout (the transposed copy, the column statistics of
    each inner fold) and its inner fold ids.
    """
    rng = np.random.default_rng([seed, r, k])  # one stream per (repeat, fold): order-free
    foldid = make_foldid(train.shape[0], inner_folds, rng)
    Xtr = X[train]
    solver = kwargs.get("solver", "compiled")
    fold_thresh = max(FOLD_THRESH, float(kwargs.get("thresh", THRESH)))  # never tighter than asked
    design = Design.of(Xtr) if solver == "compiled" else None
    out = np.full((Y.shape[1], test.shape[0]), np.nan)
    errors: list[str | None] = [None] * Y.shape[1]
    for t in range(Y.shape[1]):
        ytr = Y[train, t]
        if ytr.min() == ytr.max():
            errors[t] = f"y: repeat {r} fold {k} has one class in its training rows"
            continue
        try:
            # Only the prediction is kept: the full-data path stops at the chosen lambda.
            res = cv_logistic_lasso(
                Xtr, ytr, foldid, design=design, full_path=False, fold_thresh=fold_thresh,
                **kwargs,
            )  # fmt: skip
        except EstimatorInputError as err:
            errors[t] = str(err)
            continue
        idx = res.index_min if rule == "min" else res.index_1se
        out[t] = sigmoid(X[test] @ res.path.coefs[idx] + res.path.intercepts[idx])
    return out, errors


def lasso_cross_val_predict_many(
    X: np.ndarray,
    Y: np.ndarray,
    assignments: np.ndarray,
    *,
    inner_folds: int = 10,
    rule: Rule = "min",
    seed: int = 0,
    n_jobs: int | None = 1,
    backend: Literal["loky", "threading"] = "loky",
    **kwargs: Any,
) -> tuple[np.ndarray, list[str | None]]:
    """Out-of-fold P(y = 1) of :class:`GlmnetLogisticCV` for several binary targets on one
    plan: ``(T, R, N)``, and per target the first error that stopped it (None if none; its
    predictions are then NaN).

    ``Y`` is (N, T) with 0/1 values, ``assignments`` (R, N) each unit's test fold per repeat.
    Inner fold ids are drawn from ``numpy.random.default_rng([seed, repeat, fold])`` on the
    training units, so results do not depend on ``n_jobs``, on the order folds run in or on
    which targets share the call. One task per outer fold fits every target, sharing the
    fold's data layout. Only the prediction is kept, so the full-data path of each outer fold
    stops at the chosen lambda, and the inner folds' paths, whose held-out deviance only
    chooses lambda, are solved to ``FOLD_THRESH`` (1e-5 lambda) instead of ``thresh``. The
    compiled solver releases the GIL, so threads also parallelise; processes (``loky``, the
    default) keep the Python glue apart too.
    """
    X = _check_X(X)
    Y = np.asarray(Y, dtype=np.float64)
    if Y.ndim != 2 or Y.shape[0] != X.shape[0]:
        raise EstimatorInputError(f"Y: expected ({X.shape[0]}, targets) labels, got {Y.shape}")
    if not np.isin(Y, (0.0, 1.0)).all():
        raise EstimatorInputError("Y: labels must be 0 or 1")
    unknown = set(kwargs) - _CV_OPTIONS
    if unknown:
        raise ConfigError(f"unknown option(s) of cv_logistic_lasso: {', '.join(sorted(unknown))}")
    a = check_assignments(assignments, X.shape[0])
    folds = list(iter_folds(a))
    jobs = default_n_jobs(n_jobs)
    run = (
        delayed(_outer_fold)(X, Y, tr, te, inner_folds, rule, seed, r, k, kwargs)
        for r, k, tr, te in folds
    )
    results = run_fold_jobs(run, jobs, backend)
    out = np.full((Y.shape[1], *a.shape), np.nan)
    errors: list[str | None] = [None] * Y.shape[1]
    for (r, _k, _tr, te), (pred, errs) in zip(folds, results, strict=True):
        out[:, r, te] = pred
        for t, err in enumerate(errs):
            if err is not None and errors[t] is None:
                errors[t] = err  # the first in (repeat, fold) order
    for t, err in enumerate(errors):
        if err is not None:
            out[t] = np.nan
    return out, errors


def lasso_cross_val_predict(
    X: np.ndarray,
    y: np.ndarray,
    assignments: np.ndarray,
    *,
    inner_folds: int = 10,
    rule: Rule = "min",
    seed: int = 0,
    n_jobs: int | None = 1,
    backend: Literal["loky", "threading"] = "loky",
    **kwargs: Any,
) -> np.ndarray:
    """Out-of-fold P(y = classes[1]) of :class:`GlmnetLogisticCV` for one gene: (R, N); a
    fold that cannot be fitted raises :class:`EstimatorInputError`. See
    :func:`lasso_cross_val_predict_many`."""
    X = _check_X(X)
    y = np.asarray(y).ravel()
    y01, _ = _binary_y(y)
    if y.shape[0] != X.shape[0]:
        raise EstimatorInputError(f"y: {y.shape[0]} labels for {X.shape[0]} rows of X")
    out, errors = lasso_cross_val_predict_many(
        X, y01[:, None], assignments, inner_folds=inner_folds, rule=rule, seed=seed,
        n_jobs=n_jobs, backend=backend, **kwargs,
    )  # fmt: skip
    if errors[0] is not None:
        raise EstimatorInputError(errors[0])
    return out[0]
