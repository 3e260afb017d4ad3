"""crc-tissue's score does not depend on which solver ran: every solver of the linear SVC stops
at the same certified duality gap, so predictions agree to the tolerance the gap states.

Generated tiles shaped like the study's (CNN-like features at the two dimensions the study's
extractors have, 1,280 and 2,048; scaled down to 700 training tiles x 3 classes for speed).
At these shapes ``auto`` picks different solvers (the dual at 1,280, row-space Newton at 2,048),
and each is compared with L-BFGS and liblinear on the same fold.
"""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from histobench.tasks.estimators.linear_svc import FastLinearSVC


def _fold(p: int, n: int = 900, k: int = 3, seed: int = 0):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    means = rng.gamma(1.0, 0.02, size=(k, p))
    y = rng.integers(0, k, size=n)
    # Non-negative, skewed, correlated columns, like pooled CNN activations.
    shared = rng.gamma(2.0, 1.0, size=(n, 32)) @ rng.uniform(0, 0.1, size=(32, p))
    X = means[y] + shared + rng.gamma(1.0, 0.3, size=(n, p))
    test = np.arange(n) >= 700
    return X[~test], y[~test], X[test], y[test]


def _bound(fit: FastLinearSVC, X: np.ndarray) -> np.ndarray:
    """Per row, how far its decision values may be from the optimum's: ||x_aug|| sqrt(2 gap)."""
    Xa = np.hstack([(X - fit.mean_) / fit.scale_, np.full((len(X), 1), fit.intercept_scaling)])
    gap_abs = fit.duality_gap_ * fit.objective_
    return np.linalg.norm(Xa, axis=1) * np.sqrt(2.0 * gap_abs.max())


@pytest.mark.parametrize(("p", "auto_solver"), [(1280, "dual"), (2048, "newton")])
def test_every_solver_gives_the_same_predictions(p: int, auto_solver: str) -> None:
    Xtr, ytr, Xte, yte = _fold(p)
    with threadpool_limits(1):  # one BLAS thread: the machine running the suite is shared
        fits = {
            s: FastLinearSVC(solver=s, dtype=np.float32).fit(Xtr, ytr)
            for s in ("auto", "lbfgs", "liblinear")
        }
    assert fits["auto"].solver_.split("+")[0] == auto_solver
    for s, fit in fits.items():
        assert fit.converged_ and np.all(fit.duality_gap_ <= fit.tol), s
    ref = fits["auto"]
    d_ref = ref.decision_function(Xte)
    for s in ("lbfgs", "liblinear"):
        d = fits[s].decision_function(Xte)
        # The certificate: each fit is within its gap of the unique optimum, so two fits'
        # decision values differ by at most the sum of their bounds.
        allowed = _bound(ref, Xte) + _bound(fits[s], Xte)
        assert np.all(np.abs(d - d_ref).max(axis=1) <= allowed), s
        # What that means for labels here: identical predictions, identical accuracy.
        np.testing.assert_array_equal(fits[s].predict(Xte), ref.predict(Xte))
    acc = np.mean(ref.predict(Xte) == yte)
    assert 0.6 < acc < 0.95  # a problem with errors to make, not a trivially separable one
