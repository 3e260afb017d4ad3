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

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from joblib import Parallel, delayed
from scipy.linalg.lapack import dposv as _dposv
from sklearn.base import BaseEstimator, ClassifierMixin

from histobench.plugins.errors import ConfigError, DataError
from histobench.tasks.estimators import _glmnet_kernels as _kernels
from histobench.tasks.estimators._folds import check_assignments, default_n_jobs, iter_folds

try:  # compiled coordinate descent; private but stable across scikit-learn 1.x releases
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model._cd_fast import enet_coordinate_descent as _sk_cd
except ImportError:  # pragma: no cover - exercised only with a future scikit-learn
    _sk_cd = None

Rule = Literal["min", "1se"]
FoldPath = Literal["own", "full"]
Solver = Literal["compiled", "reference"]

# glmnet.control() defaults (R glmnet 4.1).
_FDEV = 1e-5
_DEVMAX = 0.999
_MNLAM = 5
_PMIN = 1e-9
_FMAX = float(np.log(1.0 / _PMIN - 1.0))
_VMIN = (1.0 + _PMIN) * _PMIN * (1.0 - _PMIN)
_CV_PMIN = 1e-5  # cv.glmnet's clipping of probabilities in the binomial deviance
_COUNTS = np.zeros(6, dtype=np.int64)  # work done by the compiled solver (diagnostics only)
_RNG = np.random.RandomState(0)  # unused by the cyclic solver but required by its signature


@dataclass
class LogisticPath:
    """A fitted path, coefficients on the original scale of ``X``."""

    lambdas: np.ndarray  # (L,)
    intercepts: np.ndarray  # (L,)
    coefs: np.ndarray  # (L, p)
    dev_ratio: np.ndarray  # (L,)
    null_dev: float  # glmnet's nulldev (2 * n * dev0)

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Linear predictor for every lambda: (n, L)."""
        return np.asarray(X, dtype=np.float64) @ self.coefs.T + self.intercepts[None, :]


def _binary_y(y: np.ndarray, where: str = "y") -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y).ravel()
    if y.dtype.kind == "f" and np.isnan(y).any():
        raise DataError(f"{where}: contains NaN labels")
    classes = np.unique(y)
    if classes.shape[0] != 2:
        raise DataError(
            f"{where}: binary labels need exactly 2 classes, got {classes.shape[0]} "
            f"({', '.join(map(str, classes[:5]))})"
        )
    return (y == classes[1]).astype(np.float64), classes


def _check_X(X: np.ndarray, n: int | None = None) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:
        raise DataError(f"X: expected a non-empty 2-D array, got shape {X.shape}")
    if n is not None and X.shape[0] != n:
        raise DataError(f"X: {X.shape[0]} rows for {n} labels")
    if not np.all(np.isfinite(X)):
        raise DataError("X: contains NaN or infinite values")
    return X


def _standardize(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """glmnet's ``lstandard1``: 1/n mean and sd; constant columns are dropped (``ju = 0``)."""
    xm = X.mean(axis=0)
    xs = np.sqrt(np.mean((X - xm) ** 2, axis=0))
    # glmnet's chkvars flags a column constant when every value equals the first one.
    keep = np.flatnonzero(np.any(X[:1] != X, axis=0) & (xs > 0))
    Xs = (X[:, keep] - xm[keep]) / xs[keep]
    return Xs, xm, xs, keep


def lambda_sequence(
    X: np.ndarray, y: np.ndarray, nlambda: int = 100, lambda_min_ratio: float | None = None
) -> np.ndarray:
    """glmnet's default lambda sequence for ``family="binomial"`` (``y`` coded 0/1)."""
    Xs, _, _, _ = _standardize(X)
    return _lambda_sequence_std(Xs, y, X.shape[1], nlambda, lambda_min_ratio)


def _lambda_sequence_std(
    Xs: np.ndarray, y: np.ndarray, p: int, nlambda: int, lambda_min_ratio: float | None
) -> np.ndarray:
    n = Xs.shape[0]
    lam_max = float(np.max(np.abs((y - y.mean()) @ Xs))) / n if Xs.shape[1] else 0.0
    return _lambda_sequence_from_max(lam_max, n, p, nlambda, lambda_min_ratio)


def _lambda_sequence_from_max(
    lam_max: float, n: int, p: int, nlambda: int, lambda_min_ratio: float | None
) -> np.ndarray:
    ratio = (0.01 if n < p else 1e-4) if lambda_min_ratio is None else lambda_min_ratio
    if nlambda == 1:
        return np.array([lam_max])
    # Geometric sequence with glmnet's ratio alf = ratio^(1/(nlambda-1)).
    return lam_max * np.exp(np.arange(nlambda) * (np.log(max(ratio, 1e-6)) / (nlambda - 1)))


def _sigmoid(eta: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * eta))


def _glmnet_q(eta: np.ndarray) -> np.ndarray:
    """Fitted probabilities as glmnet's Fortran computes them (exactly 0/1 beyond +-fmax)."""
    q = _sigmoid(eta)
    q[eta < -_FMAX] = 0.0
    q[eta > _FMAX] = 1.0
    return q


def _dev2(y: np.ndarray, q: np.ndarray) -> float:
    qc = np.clip(q, _PMIN, 1.0 - _PMIN)
    return float(-np.mean(y * np.log(qc) + (1.0 - y) * np.log(1.0 - qc)))


def _cd_numpy(
    w: np.ndarray, alpha: float, Xt: np.ndarray, yt: np.ndarray, max_iter: int, tol: float
) -> None:
    """Pure-numpy cyclic coordinate descent, used only when the compiled one is unavailable."""
    col_sq = (Xt * Xt).sum(axis=0)
    r = yt - Xt @ w
    for _ in range(max_iter):
        dmax = 0.0
        for j in range(w.shape[0]):
            if col_sq[j] == 0:
                continue
            u = Xt[:, j] @ r + col_sq[j] * w[j]
            new = np.sign(u) * max(abs(u) - alpha, 0.0) / col_sq[j]
            d = new - w[j]
            if d != 0.0:
                r -= d * Xt[:, j]
                w[j] = new
                dmax = max(dmax, col_sq[j] * d * d)
        if dmax < tol:
            return


def _weighted_lasso(
    w: np.ndarray, lam: float, Xt: np.ndarray, yt: np.ndarray, tol: float, max_iter: int
) -> None:
    """Solve ``min 0.5 ||yt - Xt w||^2 + lam ||w||_1`` in place (warm start from ``w``)."""
    if _sk_cd is None:  # pragma: no cover
        _cd_numpy(w, lam, Xt, yt, max_iter, tol * float(yt @ yt))
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        _sk_cd(w, lam, 0.0, Xt, yt, max_iter, tol, _RNG, 0, 0)


def _lasso_ls(
    Xt: np.ndarray, yt: np.ndarray, lam: float, b: np.ndarray, max_iter: int = 500
) -> bool:
    """Exact ``min 0.5 ||yt - Xt b||^2 + lam ||b||_1`` by feature-sign search (Lee et al., 2007).

    Active-set iterations: solve the normal equations for the current signs (Gram of the nonzero
    coefficients only), walk back to the best sign-change point when a sign would flip, add KKT
    violators. Exact to rounding and few iterations when warm-started, where coordinate descent
    crawls on ill-conditioned IRLS weights. Updates ``b`` in place; returns False when it did
    not converge (the caller falls back to coordinate descent).
    """
    c = Xt.T @ yt
    tol = 1e-12 * max(1.0, float(np.max(np.abs(c), initial=0.0)))
    for _ in range(max_iter):
        g = c - Xt.T @ (Xt @ b)  # minus the gradient of the smooth part
        active = b != 0
        viol = ~active & (np.abs(g) > lam + tol)
        opt_active = np.all(np.abs(g[active] - lam * np.sign(b[active])) <= 1e3 * tol)
        if opt_active and not viol.any():
            return True
        sgn = np.sign(b)
        if opt_active:
            sgn[viol] = np.sign(g[viol])
        A = np.flatnonzero(sgn != 0)
        XA = Xt[:, A]
        gram, rhs = XA.T @ XA, c[A] - lam * sgn[A]
        # Cholesky (half of LU's work); a Gram that is singular to working precision falls
        # back to the general solver.
        _, target, info = _dposv(gram, rhs)
        if info != 0:
            try:
                target = np.linalg.solve(gram, rhs)
            except np.linalg.LinAlgError:
                return False
        cur = b[A]
        if np.all(np.sign(target) == sgn[A]):
            b[A] = target
            continue
        # Candidate points: the full step and every zero crossing on the segment.
        d = target - cur
        with np.errstate(divide="ignore", invalid="ignore"):
            t = -cur / d
        ts = np.unique(np.concatenate([t[(t > 0) & (t < 1)], [1.0]]))
        cand = cur[None, :] + ts[:, None] * d[None, :]
        cand[np.abs(cand) < 1e-15 * (1 + np.abs(cur))[None, :]] = 0.0
        r0, dr = yt - XA @ cur, XA @ d
        # 0.5 ||r0 - t dr||^2 + lam ||cand(t)||_1 at every candidate t at once
        f = 0.5 * (r0 @ r0 - 2.0 * ts * (r0 @ dr) + ts * ts * (dr @ dr))
        f = f + lam * np.abs(cand).sum(axis=1)
        b[A] = cand[int(np.argmin(f))]
        b[np.abs(b) < 1e-14] = 0.0  # the coordinate(s) that crossed zero leave the active set
    return False


class _PathSolver:
    """Warm-started lasso-logistic solver on standardised columns ``Xs`` (n, p_kept)."""

    def __init__(self, Xs: np.ndarray, y: np.ndarray, thresh: float, max_newton: int) -> None:
        self.Xs = Xs
        self.y = y
        self.n = Xs.shape[0]
        ybar = float(y.mean())
        self.dev0 = -(np.log(ybar / (1 - ybar)) * ybar + np.log(1 - ybar))
        self.shr = thresh * self.dev0
        self.max_newton = max_newton
        self.cd_tol = 1e-8
        self.b0 = float(np.log(ybar / (1 - ybar)))
        self.b = np.zeros(Xs.shape[1])
        self.eta = np.full(self.n, self.b0)
        self.grad = (y - ybar) @ Xs / self.n  # X_std^T (y - p) / n at the current solution
        self.ever = np.zeros(Xs.shape[1], dtype=bool)

    def _objective(self, eta: np.ndarray, b: np.ndarray, lam: float) -> float:
        # mean logistic loss, computed stably
        loss = np.mean(np.logaddexp(0.0, eta) - self.y * eta)
        return float(loss + lam * np.abs(b).sum())

    def _newton_on(self, W: np.ndarray, lam: float) -> None:
        """IRLS / proximal Newton restricted to columns ``W`` until glmnet's criterion < shr."""
        Xw = self.Xs[:, W]
        Xw2 = Xw * Xw
        bW = self.b[W].copy()
        f_old = self._objective(self.eta, bW, lam)
        for _ in range(self.max_newton):
            p = _sigmoid(self.eta)
            v = np.clip(p * (1.0 - p), 1e-12, None) / self.n
            sv = float(v.sum())
            xbar = (v @ Xw) / sv
            # IRLS working response without the intercept (removed by the v-weighted centring).
            z = Xw @ bW + (self.y - p) / (self.n * v)
            zc = z - float(v @ z) / sv
            sq = np.sqrt(v)
            Xt = sq[:, None] * (Xw - xbar)
            yt = sq * zc
            bnew = bW.copy()
            if not _lasso_ls(Xt, yt, lam, bnew):
                bnew = bW.copy()
                _weighted_lasso(bnew, lam, np.asfortranarray(Xt), yt, self.cd_tol, 100000)
            b0new = self._intercept(Xw, bnew, p, v, sv)
            eta_new = b0new + Xw @ bnew
            # Step-halving keeps the objective monotone near separation (glmnet does not need
            # it in practice; it costs one objective evaluation).
            step = 1.0
            f_new = self._objective(eta_new, bnew, lam)
            while f_new > f_old + 1e-14 * abs(f_old) and step > 1e-6:
                step *= 0.5
                bnew = bW + step * (bnew - bW)
                b0new = self.b0 + step * (b0new - self.b0)
                eta_new = b0new + Xw @ bnew
                f_new = self._objective(eta_new, bnew, lam)
            f_old = f_new
            xv = v @ Xw2
            dlx = max(sv * (b0new - self.b0) ** 2, float(np.max(xv * (bnew - bW) ** 2, initial=0)))
            self.b0, bW, self.eta = b0new, bnew, eta_new
            if dlx < self.shr:
                break
        self.b[W] = bW

    def _intercept(
        self, Xw: np.ndarray, bnew: np.ndarray, p: np.ndarray, v: np.ndarray, sv: float
    ) -> float:
        # Weighted least-squares intercept of the quadratic model:
        # z_full = eta + (y - p)/(n v); b0 = vmean(z_full) - vmean(Xw) . b
        z_full = self.eta + (self.y - p) / (self.n * v)
        return float(v @ z_full) / sv - float(((v @ Xw) / sv) @ bnew)

    def solve(self, lam: float, lam_prev: float) -> None:
        """Move the solution to ``lam`` (warm start from the current one)."""
        strong = np.abs(self.grad) > (2.0 * lam - lam_prev)
        W = np.flatnonzero(self.ever | strong | (self.b != 0))
        while True:
            if W.size:
                self._newton_on(W, lam)
            else:
                self._intercept_only()
            p = _sigmoid(self.eta)
            self.grad = (self.y - p) @ self.Xs / self.n
            outside = np.ones(self.Xs.shape[1], dtype=bool)
            outside[W] = False
            viol = outside & (np.abs(self.grad) > lam * (1.0 + 1e-9))
            if not viol.any():
                break
            W = np.union1d(W, np.flatnonzero(viol))
        self.ever |= self.b != 0

    def _intercept_only(self) -> None:
        ybar = float(self.y.mean())
        self.b0 = float(np.log(ybar / (1 - ybar)))
        self.eta = np.full(self.n, self.b0)


def logistic_lasso_path(
    X: np.ndarray,
    y: np.ndarray,
    *,
    lambdas: Sequence[float] | np.ndarray | None = None,
    nlambda: int = 100,
    lambda_min_ratio: float | None = None,
    thresh: float = 1e-12,
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
        raise DataError(f"y: {y.shape[0]} labels for {X.shape[0]} rows of X")
    if solver not in ("compiled", "reference"):
        raise ConfigError(f"solver: expected 'compiled' or 'reference', got {solver!r}")
    design = _Design.of(X) if solver == "compiled" else None
    rows = np.arange(X.shape[0])
    return _fit_rows(X, design, rows, y, lambdas, nlambda, lambda_min_ratio, thresh, max_newton)


def _fit_rows(
    X: np.ndarray,
    design: _Design | None,
    rows: np.ndarray,
    y: np.ndarray,
    lambdas: Sequence[float] | np.ndarray | None,
    nlambda: int,
    lambda_min_ratio: float | None,
    thresh: float,
    max_newton: int = 100,
) -> LogisticPath:
    """The path on ``X[rows]`` (labels ``y`` of those rows); compiled when ``design`` is given."""
    ybar = float(y.mean())
    if not (_PMIN < ybar < 1.0 - _PMIN):
        raise DataError("y: only one class in the training rows, cannot fit a logistic model")
    if design is not None:
        path = _compiled_path(design, rows, y, lambdas, nlambda, lambda_min_ratio, thresh)
        if path is not None:
            return path
    return _reference_path(X[rows], y, lambdas, nlambda, lambda_min_ratio, thresh, max_newton)


def _compiled_path(
    design: _Design,
    rows: np.ndarray,
    y: np.ndarray,
    lambdas: Sequence[float] | np.ndarray | None,
    nlambda: int,
    lambda_min_ratio: float | None,
    thresh: float,
) -> LogisticPath | None:
    """The path on the rows ``rows`` by :func:`_glmnet_kernels.solve_path`; None if it fails."""
    XT = design.XT
    p, N = XT.shape
    n = rows.shape[0]
    xm, xs, varies = _kernels.column_stats(XT, rows)
    keep = np.flatnonzero(varies & (xs > 0))
    if lambdas is not None:
        lam_seq = np.asarray(lambdas, dtype=np.float64)
    else:
        r = np.zeros(N)
        r[rows] = y - y.mean()
        grad = ((XT @ r)[keep] - xm[keep] * r.sum()) / xs[keep]
        lam_max = float(np.max(np.abs(grad))) / n if keep.size else 0.0
        lam_seq = _lambda_sequence_from_max(lam_max, n, p, nlambda, lambda_min_ratio)
    L = lam_seq.shape[0]
    a0 = np.empty(L)
    beta = np.zeros((L, p))
    dev = np.empty(L)
    # residual tolerance 1000 * thresh * lambda (1e-9 lambda by default), at most 1000 iterations
    try:
        last, status = _kernels.solve_path(
            XT, design.XT32, design.cm, design.cs, design.cnorm, rows, y, keep, xm, xs,
            lam_seq, lambdas is not None, 1000.0 * thresh, 1000,
            _MNLAM, _FDEV, _DEVMAX, _FMAX, _PMIN, _VMIN, a0, beta, dev, _COUNTS,
        )  # fmt: skip
    except (ZeroDivisionError, FloatingPointError):
        # Compiled arithmetic raises where numpy would give inf (a zero curvature on a
        # near-separated fold, seen on the 24-patient demo cohort): the reference solver,
        # which handles those steps, refits this path.
        return None
    if status != _kernels.OK:
        return None
    ybar = float(y.mean())
    dev0 = -(np.log(ybar / (1 - ybar)) * ybar + np.log(1 - ybar))
    return LogisticPath(lam_seq[:last].copy(), a0[:last], beta[:last], dev[:last], 2.0 * n * dev0)


@dataclass
class _Design:
    """The data as the compiled solver reads it, shared by the full-data and the fold paths of
    a cross-validation (folds select rows inside the solver, nothing is copied per fold).

    ``XT``: ``X`` transposed in C order (columns contiguous). ``XT32``: the columns centred
    (``cm``) and scaled (``cs``) over all rows in float32, with row norms ``cnorm``: the KKT
    screening product over all columns runs on it.
    """

    XT: np.ndarray
    XT32: np.ndarray
    cm: np.ndarray
    cs: np.ndarray
    cnorm: np.ndarray

    @classmethod
    def of(cls, X: np.ndarray) -> _Design:
        XT = np.ascontiguousarray(X.T)
        cm = XT.mean(axis=1)
        cs = XT.std(axis=1)
        cs[cs == 0] = 1.0
        XT32 = ((XT - cm[:, None]) / cs[:, None]).astype(np.float32)
        cnorm = np.sqrt(np.einsum("ij,ij->i", XT32, XT32, dtype=np.float64))
        return cls(XT, XT32, cm, cs, cnorm)


def _reference_path(
    X: np.ndarray,
    y: np.ndarray,
    lambdas: Sequence[float] | np.ndarray | None,
    nlambda: int,
    lambda_min_ratio: float | None,
    thresh: float,
    max_newton: int,
) -> LogisticPath:
    """The numpy solver (proximal Newton + feature-sign search on a working set)."""
    n, p = X.shape
    Xs, xm, xs, keep = _standardize(X)
    user = lambdas is not None
    lam_seq = (
        np.asarray(lambdas, dtype=np.float64)
        if user
        else _lambda_sequence_std(Xs, y, p, nlambda, lambda_min_ratio)
    )
    solver = _PathSolver(Xs, y, thresh, max_newton)
    dev0 = solver.dev0
    L = lam_seq.shape[0]
    a0 = np.empty(L)
    beta = np.zeros((L, Xs.shape[1]))
    dev = np.empty(L)
    lam_prev = lam_seq[0] if not user else max(lam_seq[0], float(np.max(np.abs(solver.grad))))
    last = L
    for k in range(L):
        lam = float(lam_seq[k])
        if k == 0 and not user:
            pass  # lambda_max: the intercept-only model is the solution (glmnet's "big" lambda)
        else:
            solver.solve(lam, lam_prev)
        lam_prev = lam
        a0[k], beta[k] = solver.b0, solver.b
        q = _glmnet_q(solver.eta)
        dev[k] = (dev0 - _dev2(y, q)) / dev0
        if float(np.sum(q * (1.0 - q))) / n <= _VMIN:
            last = k + 1
            break
        if user or k + 1 < min(_MNLAM, L):
            continue
        if dev[k] > _DEVMAX or (k > 0 and dev[k] - dev[k - 1] < _FDEV):
            last = k + 1
            break
    coefs = np.zeros((last, p))
    coefs[:, keep] = beta[:last] / xs[keep]
    intercepts = a0[:last] - coefs @ xm
    return LogisticPath(lam_seq[:last].copy(), intercepts, coefs, dev[:last], 2.0 * n * dev0)


def _cv_deviance(y: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """cv.lognet's per-observation binomial deviance; ``eta`` (n, L)."""
    prob = np.clip(_sigmoid(eta), _CV_PMIN, 1.0 - _CV_PMIN)
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
    thresh: float = 1e-12,
    fold_path: FoldPath = "own",
    solver: Solver = "compiled",
) -> CVResult:
    """``cv.glmnet(x, y, family="binomial", foldid=foldid, type.measure="deviance")``.

    The full-data path and the fold paths share one transposed copy of ``X``; folds select
    their rows inside the compiled solver instead of copying the matrix.
    """
    if solver not in ("compiled", "reference"):
        raise ConfigError(f"solver: expected 'compiled' or 'reference', got {solver!r}")
    X = np.asarray(X, dtype=np.float64)
    y01 = np.asarray(y01, dtype=np.float64).ravel()
    design = _Design.of(X) if solver == "compiled" else None
    path = _fit_rows(X, design, np.arange(X.shape[0]), y01, None, nlambda, lambda_min_ratio, thresh)
    L = path.lambdas.shape[0]
    folds = np.unique(foldid)
    if folds.shape[0] < 3:
        raise ConfigError(f"foldid: cv.glmnet needs at least 3 folds, got {folds.shape[0]}")
    eta = np.empty((X.shape[0], L))
    for f in folds:
        test = foldid == f
        ytr = y01[~test]
        if ytr.min() == ytr.max():
            raise DataError(f"foldid: inner fold {f} leaves one class in its training rows")
        if fold_path == "own":
            # glmnet >= 4: each fold fits its own default path; predictions at the full-data
            # lambdas interpolate its coefficients linearly in lambda (predict.glmnet's
            # lambda.interp), clamped to the fold's lambda range.
            fit = _fit_rows(
                X, design, np.flatnonzero(~test), ytr, None, nlambda, lambda_min_ratio, thresh
            )
            eta[test] = _interp_lambda(fit.decision_function(X[test]), fit.lambdas, path.lambdas)
        else:
            # glmnet < 4: folds reuse the full-data sequence; a path cut short is padded.
            rows = np.flatnonzero(~test)
            fit = _fit_rows(X, design, rows, ytr, path.lambdas, nlambda, None, thresh)
            e = fit.decision_function(X[test])
            eta[test, : e.shape[1]] = e
            eta[test, e.shape[1] :] = e[:, -1:]
    raw = _cv_deviance(y01, eta)
    means = np.stack([raw[foldid == f].mean(axis=0) for f in folds])  # (K, L)
    weights = np.array([np.sum(foldid == f) for f in folds], dtype=np.float64)
    cvm = weights @ means / weights.sum()
    cvsd = np.sqrt((weights @ (means - cvm) ** 2) / weights.sum() / (folds.shape[0] - 1))
    idx_min = int(np.flatnonzero(cvm <= cvm.min())[0])  # lambdas decrease: first = largest
    idx_1se = int(np.flatnonzero(cvm <= cvm[idx_min] + cvsd[idx_min])[0])
    return CVResult(path, cvm, cvsd, idx_min, idx_1se)


class GlmnetLogisticCV(ClassifierMixin, BaseEstimator):
    """``cv.glmnet(family="binomial", alpha=1)`` as a scikit-learn classifier.

    Fitted attributes: ``classes_``, ``lambdas_`` (full-data path), ``lambda_`` (chosen by
    ``rule``), ``lambda_min_``, ``lambda_1se_``, ``cv_mean_``, ``cv_se_``, ``dev_ratio_``,
    ``coef_`` (1, p) and ``intercept_`` (1,) on the original scale, ``path_``, ``foldid_``.
    """

    def __init__(
        self,
        *,
        n_folds: int = 10,
        foldid: np.ndarray | None = None,
        rule: Rule = "min",
        nlambda: int = 100,
        lambda_min_ratio: float | None = None,
        thresh: float = 1e-12,
        fold_path: FoldPath = "own",
        random_state: int | None = None,
        solver: Solver = "compiled",
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

    def fit(self, X: np.ndarray, y: np.ndarray) -> GlmnetLogisticCV:
        if self.rule not in ("min", "1se"):
            raise ConfigError(f"rule: expected 'min' or '1se', got {self.rule!r}")
        if self.fold_path not in ("own", "full"):
            raise ConfigError(f"fold_path: expected 'own' or 'full', got {self.fold_path!r}")
        y01, classes = _binary_y(y)
        X = _check_X(X, y01.shape[0])
        if self.foldid is not None:
            foldid = np.asarray(self.foldid).ravel()
            if foldid.shape[0] != X.shape[0]:
                raise ConfigError(f"foldid: {foldid.shape[0]} ids for {X.shape[0]} rows")
        else:
            if not 3 <= self.n_folds <= X.shape[0]:
                raise ConfigError(f"n_folds: expected 3..{X.shape[0]}, got {self.n_folds}")
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
        self.n_features_in_ = X.shape[1]
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        X = _check_X(X)
        if X.shape[1] != self.n_features_in_:
            raise DataError(
                f"X: {X.shape[1]} features, the model was fitted on {self.n_features_in_}"
            )
        return X @ self.coef_[0] + self.intercept_[0]

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        p1 = _sigmoid(self.decision_function(X))
        return np.column_stack([1.0 - p1, p1])

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.classes_[(self.decision_function(X) > 0).astype(int)]


def _outer_fold(
    X: np.ndarray,
    y: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    inner_folds: int,
    rule: Rule,
    seed: int,
    r: int,
    k: int,
    kwargs: dict[str, object],
) -> np.ndarray:
    rng = np.random.default_rng([seed, r, k])  # one stream per (repeat, fold): order-free
    foldid = make_foldid(train.shape[0], inner_folds, rng)
    ytr = y[train]
    if np.unique(ytr).shape[0] != 2:
        raise DataError(f"y: repeat {r} fold {k} has one class in its training rows")
    est = GlmnetLogisticCV(foldid=foldid, rule=rule, **kwargs).fit(X[train], ytr)  # type: ignore[arg-type]
    return est.predict_proba(X[test])[:, 1]


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
    **kwargs: object,
) -> np.ndarray:
    """Out-of-fold P(y = classes[1]) of :class:`GlmnetLogisticCV` for one gene: (R, N).

    ``assignments`` (R, N) holds each unit's test fold per repeat. Inner fold ids are drawn from
    ``numpy.random.default_rng([seed, repeat, fold])`` on the training units, so results do not
    depend on ``n_jobs`` or on the order folds run in. The compiled solver releases the GIL, so
    threads also parallelise; processes (``loky``, the default) keep the Python glue apart too.
    """
    X = _check_X(X)
    y = np.asarray(y).ravel()
    _binary_y(y)
    if y.shape[0] != X.shape[0]:
        raise DataError(f"y: {y.shape[0]} labels for {X.shape[0]} rows of X")
    a = check_assignments(assignments, X.shape[0])
    folds = list(iter_folds(a))
    jobs = default_n_jobs(n_jobs)
    run = (
        delayed(_outer_fold)(X, y, tr, te, inner_folds, rule, seed, r, k, kwargs)
        for r, k, tr, te in folds
    )
    if jobs == 1:
        results = [f(*args, **kw) for f, args, kw in run]
    else:
        results = Parallel(n_jobs=jobs, backend=backend)(run)
    out = np.full(a.shape, np.nan)
    for (r, _k, _tr, te), pred in zip(folds, results, strict=True):
        out[r, te] = pred
    return out
