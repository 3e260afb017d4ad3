"""Shared pieces of the glmnet LASSO: glmnet's constants, standardisation, lambda sequence,
probabilities and deviance, and the fitted path (used by both path solvers and the CV)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# glmnet.control() defaults (R glmnet 4.1).
FDEV = 1e-5
DEVMAX = 0.999
MNLAM = 5
PMIN = 1e-9
FMAX = float(np.log(1.0 / PMIN - 1.0))
VMIN = (1.0 + PMIN) * PMIN * (1.0 - PMIN)


@dataclass
class LogisticPath:
    """A fitted path, coefficients on the original scale of ``X``."""

    lambdas: np.ndarray  # (L,)
    intercepts: np.ndarray  # (L,)
    coefs: np.ndarray  # (L, p)
    dev_ratio: np.ndarray  # (L,)
    null_dev: float  # glmnet's nulldev (2 * n * dev0)

    def head(self, count: int) -> LogisticPath:
        """The path's first ``count`` lambdas."""
        return LogisticPath(
            self.lambdas[:count],
            self.intercepts[:count],
            self.coefs[:count],
            self.dev_ratio[:count],
            self.null_dev,
        )

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        """Linear predictor for every lambda: (n, L)."""
        used = np.flatnonzero(self.coefs.any(axis=0))  # a lasso path is sparse
        X = np.asarray(X, dtype=np.float64)
        return X[:, used] @ self.coefs[:, used].T + self.intercepts[None, :]


def standardize(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
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
    Xs, _, _, _ = standardize(X)
    return lambda_sequence_std(Xs, y, X.shape[1], nlambda, lambda_min_ratio)


def lambda_sequence_std(
    Xs: np.ndarray, y: np.ndarray, p: int, nlambda: int, lambda_min_ratio: float | None
) -> np.ndarray:
    n = Xs.shape[0]
    lam_max = float(np.max(np.abs((y - y.mean()) @ Xs))) / n if Xs.shape[1] else 0.0
    return lambda_sequence_from_max(lam_max, n, p, nlambda, lambda_min_ratio)


def lambda_sequence_from_max(
    lam_max: float, n: int, p: int, nlambda: int, lambda_min_ratio: float | None
) -> np.ndarray:
    ratio = (0.01 if n < p else 1e-4) if lambda_min_ratio is None else lambda_min_ratio
    if nlambda == 1:
        return np.array([lam_max])
    # Geometric sequence with glmnet's ratio alf = ratio^(1/(nlambda-1)).
    return lam_max * np.exp(np.arange(nlambda) * (np.log(max(ratio, 1e-6)) / (nlambda - 1)))


def sigmoid(eta: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * eta))


def glmnet_q(eta: np.ndarray) -> np.ndarray:
    """Fitted probabilities as glmnet's Fortran computes them (exactly 0/1 beyond +-fmax)."""
    q = sigmoid(eta)
    q[eta < -FMAX] = 0.0
    q[eta > FMAX] = 1.0
    return q


def dev2(y: np.ndarray, q: np.ndarray) -> float:
    qc = np.clip(q, PMIN, 1.0 - PMIN)
    return float(-np.mean(y * np.log(qc) + (1.0 - y) * np.log(1.0 - qc)))
