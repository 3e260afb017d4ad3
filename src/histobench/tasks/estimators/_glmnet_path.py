"""The LASSO path on a subset of rows: the compiled solver (:mod:`._glmnet_kernels`) with the
reference solver as its fallback, and the shared data layout of a cross-validation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from histobench.tasks.estimators import _glmnet_kernels as _kernels
from histobench.tasks.estimators._glmnet_common import (
    DEVMAX,
    FDEV,
    FMAX,
    MNLAM,
    PMIN,
    VMIN,
    LogisticPath,
    lambda_sequence,
    lambda_sequence_from_max,
)
from histobench.tasks.estimators._glmnet_reference import reference_path
from histobench.tasks.estimators._validation import EstimatorInputError

COUNTS = np.zeros(6, dtype=np.int64)  # work done by the compiled solver (diagnostics only)


@dataclass
class Design:
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
    # column statistics per row subset: targets that share a design share their inner folds
    _stats: dict[bytes, tuple[np.ndarray, np.ndarray, np.ndarray]] = field(
        default_factory=dict, repr=False
    )

    def column_stats(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """1/n mean and sd of every column over ``rows``, and whether it varies there."""
        key = np.ascontiguousarray(rows, dtype=np.int64).tobytes()
        if key not in self._stats:
            self._stats[key] = _kernels.column_stats(self.XT, rows)
        return self._stats[key]

    @classmethod
    def of(cls, X: np.ndarray) -> Design:
        XT = np.ascontiguousarray(X.T)
        cm = XT.mean(axis=1)
        cs = XT.std(axis=1)
        cs[cs == 0] = 1.0
        XT32 = ((XT - cm[:, None]) / cs[:, None]).astype(np.float32)
        cnorm = np.sqrt(np.einsum("ij,ij->i", XT32, XT32, dtype=np.float64))
        return cls(XT, XT32, cm, cs, cnorm)


def fit_rows(
    X: np.ndarray,
    design: Design | None,
    rows: np.ndarray,
    y: np.ndarray,
    lambdas: Sequence[float] | np.ndarray | None,
    nlambda: int,
    lambda_min_ratio: float | None,
    thresh: float,
    max_newton: int = 100,
    max_lambdas: int | None = None,
) -> LogisticPath:
    """The path on ``X[rows]`` (labels ``y`` of those rows); compiled when ``design`` is given.

    ``max_lambdas``: fit only the first values of the computed sequence (glmnet's stop rules
    still apply within them, so the result is the complete path cut there).
    """
    ybar = float(y.mean())
    if not (PMIN < ybar < 1.0 - PMIN):
        raise EstimatorInputError(
            "y: only one class in the training rows, cannot fit a logistic model"
        )
    if design is not None:
        path = _compiled_path(
            design, rows, y, lambdas, nlambda, lambda_min_ratio, thresh, max_lambdas
        )
        if path is not None:
            return path
    path = reference_path(X[rows], y, lambdas, nlambda, lambda_min_ratio, thresh, max_newton)
    return path if max_lambdas is None else path.head(max_lambdas)


def default_lambdas(
    X: np.ndarray,
    design: Design | None,
    rows: np.ndarray,
    y: np.ndarray,
    nlambda: int,
    lambda_min_ratio: float | None,
) -> np.ndarray:
    """glmnet's computed lambda sequence of the rows ``rows`` (what :func:`fit_rows` fits
    when no sequence is given), without fitting the path."""
    if design is None:
        return lambda_sequence(X[rows], y, nlambda, lambda_min_ratio)
    xm, xs, varies = design.column_stats(rows)
    keep = np.flatnonzero(varies & (xs > 0))
    return _computed_sequence(design, rows, y, xm, xs, keep, nlambda, lambda_min_ratio)


def _computed_sequence(
    design: Design,
    rows: np.ndarray,
    y: np.ndarray,
    xm: np.ndarray,
    xs: np.ndarray,
    keep: np.ndarray,
    nlambda: int,
    lambda_min_ratio: float | None,
) -> np.ndarray:
    """glmnet's sequence from ``lambda_max = max_j |x_std_j . (y - ybar)| / n``."""
    p, N = design.XT.shape
    n = rows.shape[0]
    r = np.zeros(N)
    r[rows] = y - y.mean()
    grad = ((design.XT @ r)[keep] - xm[keep] * r.sum()) / xs[keep]
    lam_max = float(np.max(np.abs(grad))) / n if keep.size else 0.0
    return lambda_sequence_from_max(lam_max, n, p, nlambda, lambda_min_ratio)


def _compiled_path(
    design: Design,
    rows: np.ndarray,
    y: np.ndarray,
    lambdas: Sequence[float] | np.ndarray | None,
    nlambda: int,
    lambda_min_ratio: float | None,
    thresh: float,
    max_lambdas: int | None = None,
) -> LogisticPath | None:
    """The path on the rows ``rows`` by :func:`_glmnet_kernels.solve_path`; None if it fails."""
    XT = design.XT
    p = XT.shape[0]
    n = rows.shape[0]
    xm, xs, varies = design.column_stats(rows)
    keep = np.flatnonzero(varies & (xs > 0))
    if lambdas is not None:
        lam_seq = np.asarray(lambdas, dtype=np.float64)
    else:
        lam_seq = _computed_sequence(design, rows, y, xm, xs, keep, nlambda, lambda_min_ratio)
        # Cut before solving: the stop rules see the same deviances up to the cut.
        lam_seq = lam_seq[:max_lambdas]
    L = lam_seq.shape[0]
    a0 = np.empty(L)
    beta = np.zeros((L, p))
    dev = np.empty(L)
    problem = _kernels.PathProblem(
        XT=XT,
        XT32=design.XT32,
        cm=design.cm,
        cs=design.cs,
        cnorm=design.cnorm,
        rows=rows,
        y=y,
        keep=keep,
        xm=xm,
        xs=xs,
        lambdas=lam_seq,
        user=lambdas is not None,
    )
    # Python scalars of fixed types, so that every call reuses one compiled specialisation.
    settings = _kernels.PathSettings(
        ftol=1000.0 * float(thresh),  # residual tolerance: 1e-7 lambda by default
        max_iter=1000,
        mnlam=int(MNLAM),
        fdev=float(FDEV),
        devmax=float(DEVMAX),
        fmax=float(FMAX),
        pmin=float(PMIN),
        vmin=float(VMIN),
    )
    out = _kernels.PathOutput(a0=a0, beta=beta, dev=dev, counts=COUNTS)
    try:
        last, status = _kernels.solve_path(problem, settings, out)
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
