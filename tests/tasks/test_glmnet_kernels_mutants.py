"""The compiled glmnet path solver (:mod:`._glmnet_kernels`) held to its documented accuracy,
found needed by hand-made mutants of its critical lines (see TESTING.md): the solver must
finish by itself (a fallback to the reference solver hides a broken Newton step), reach its
stationarity tolerance (1e-9 lambda, not merely the 1e-6 certificate), zero the intercept's
gradient to rounding and reuse its Newton factor (a mis-scaled Hessian gives the same fits,
more slowly)."""

from __future__ import annotations

import numpy as np
import pytest

from histobench.tasks.estimators import _glmnet_path
from histobench.tasks.estimators.glmnet import GlmnetLogisticCV, logistic_lasso_path
from tests.tasks.lasso_data import planted_logistic

_data = planted_logistic


CASES = [(70, 25, 51), (50, 150, 52), (120, 40, 53)]


@pytest.fixture
def no_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the compiled solver fell back to the reference solver")

    monkeypatch.setattr(_glmnet_path, "reference_path", refuse)


@pytest.mark.usefixtures("no_fallback")
def test_compiled_solver_finishes_without_the_fallback() -> None:
    for n, p, seed in CASES:
        X, y = _data(n, p, seed)
        assert logistic_lasso_path(X, y).lambdas.shape[0] > 5
        foldid = np.random.default_rng(seed).permutation(np.arange(n) % 5) + 1
        GlmnetLogisticCV(foldid=foldid).fit(X, y)


@pytest.mark.parametrize(("n", "p", "seed"), CASES)
def test_compiled_path_is_stationary_to_its_tolerance(n: int, p: int, seed: int) -> None:
    """Every lambda of the path: the KKT residual on the standardised scale is below
    1e-8 lambda (the solver stops at 1e-9 lambda), and the intercept's gradient
    sum(y - p) vanishes to rounding (two Newton steps on it after the joint tolerance)."""
    X, y = _data(n, p, seed)
    path = logistic_lasso_path(X, y)
    xm, xs = X.mean(0), X.std(0)
    Z = (X - xm) / xs
    for k in range(1, path.lambdas.shape[0]):
        eta = path.intercepts[k] + X @ path.coefs[k]
        prob = 1.0 / (1.0 + np.exp(-eta))
        g = (y - prob) @ Z / n
        b = path.coefs[k] * xs
        lam = path.lambdas[k]
        viol = np.where(b != 0, np.abs(g - lam * np.sign(b)), np.maximum(np.abs(g) - lam, 0.0))
        assert np.max(viol) <= 1e-8 * lam, (k, np.max(viol) / lam)
        assert abs(np.sum(y - prob)) <= 1e-12 * n, k


@pytest.mark.parametrize(("n", "p", "seed"), CASES)
def test_the_newton_factor_is_reused_across_steps_and_lambdas(n: int, p: int, seed: int) -> None:
    """The Cholesky factor of the Hessian is reused across chord steps and lambdas: a path of
    ~100 lambdas needs a few dozen factorisations at most (7-30 here). A mis-scaled Hessian
    still converges (Anderson mixing corrects the step), but refactorises at every stall."""
    X, y = _data(n, p, seed)
    _glmnet_path.COUNTS[:] = 0
    path = logistic_lasso_path(X, y)
    factorisations = int(_glmnet_path.COUNTS[0])
    assert 0 < factorisations <= path.lambdas.shape[0] // 2
