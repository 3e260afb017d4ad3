"""FastLinearSVC against scikit-learn's LinearSVC (liblinear) on the same folds."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from histobench.plugins.errors import ConfigError, DataError
from histobench.tasks.estimators.linear_svc import FastLinearSVC


def _tiles(n: int = 1800, p: int = 64, k: int = 9, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """9 tissue-like classes: class means plus correlated noise, columns on mixed scales."""
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(k, p)) * 0.25
    y = rng.integers(0, k, size=n)
    mix = rng.normal(size=(p, p)) / np.sqrt(p)
    X = means[y] + rng.normal(size=(n, p)) @ mix + 0.5 * rng.normal(size=(n, p))
    X = X * rng.uniform(0.1, 10.0, size=p) + rng.normal(size=p) * 5
    return X, np.array(list("ABCDEFGHI"))[y]


def _sk(Xtr: np.ndarray, ytr: np.ndarray) -> tuple[StandardScaler, LinearSVC]:
    scaler = StandardScaler().fit(Xtr)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        svc = LinearSVC(C=1.0, max_iter=5000).fit(scaler.transform(Xtr), ytr)
    return scaler, svc


def test_accuracy_matches_linear_svc_on_the_same_folds() -> None:
    X, y = _tiles()
    rng = np.random.default_rng(1)
    folds = rng.permutation(np.arange(len(y)) % 3)
    acc_fast, acc_sk = [], []
    for k in range(3):
        te = folds == k
        fast = FastLinearSVC().fit(X[~te], y[~te])
        scaler, svc = _sk(X[~te], y[~te])
        acc_fast.append(np.mean(fast.predict(X[te]) == y[te]))
        acc_sk.append(np.mean(svc.predict(scaler.transform(X[te])) == y[te]))
        d_fast = fast.decision_function(X[te])
        d_sk = svc.decision_function(scaler.transform(X[te]))
        assert d_fast.shape == d_sk.shape == (te.sum(), 9)
        assert np.corrcoef(d_fast.ravel(), d_sk.ravel())[0, 1] > 0.999
        np.testing.assert_array_equal(fast.classes_, svc.classes_)
    # Non-trivial task (neither chance nor perfect), and the two agree within 0.3 pp.
    assert 0.5 < np.mean(acc_sk) < 0.98
    assert abs(np.mean(acc_fast) - np.mean(acc_sk)) <= 0.003


def test_float32_products_give_the_same_predictions() -> None:
    X, y = _tiles(n=900, p=32, seed=2)
    a = FastLinearSVC().fit(X[:700], y[:700]).predict(X[700:])
    b = FastLinearSVC(dtype=np.float32).fit(X[:700], y[:700]).predict(X[700:])
    assert np.mean(a == b) >= 0.99


def test_binary_problem_has_one_decision_function() -> None:
    X, y = _tiles(n=400, p=16, k=2, seed=3)
    fast = FastLinearSVC().fit(X[:300], y[:300])
    scaler, svc = _sk(X[:300], y[:300])
    d = fast.decision_function(X[300:])
    assert d.shape == (100,)
    assert np.corrcoef(d, svc.decision_function(scaler.transform(X[300:])))[0, 1] > 0.999
    assert set(fast.predict(X[300:])) <= set(y)


def test_standardisation_uses_training_rows_only() -> None:
    X, y = _tiles(n=600, p=16, seed=4)
    X[:, 5] = 3.0  # constant column: scale 1, no division by zero
    fast = FastLinearSVC().fit(X[:500], y[:500])
    np.testing.assert_allclose(fast.mean_, X[:500].mean(0))
    expected = X[:500].std(0)
    expected[5] = 1.0
    np.testing.assert_allclose(fast.scale_, expected)
    assert fast.coef_[:, 5] == pytest.approx(0.0, abs=1e-12)
    # Test rows cannot move the model: predictions of the untouched rows stay put.
    X2 = X.copy()
    X2[500:550] *= 1e3
    np.testing.assert_array_equal(
        FastLinearSVC().fit(X2[:500], y[:500]).predict(X2[550:]), fast.predict(X[550:])
    )


def test_single_class_is_a_data_error() -> None:
    X, _ = _tiles(n=50, p=4)
    with pytest.raises(DataError, match="at least 2 classes"):
        FastLinearSVC().fit(X, np.zeros(50))


def _objective(
    mean: np.ndarray, scale: np.ndarray, coef_std: np.ndarray, X: np.ndarray, y: np.ndarray,
    classes: np.ndarray, scaling: float = 1.0,
) -> float:  # fmt: skip
    """liblinear's primal objective (C = 1) of every one-vs-rest problem, standardised space."""
    Y = np.where(y[:, None] == classes[None, :], 1.0, -1.0)
    if coef_std.shape[0] == 1:
        Y = Y[:, 1:]
    W, b = coef_std[:, :-1], coef_std[:, -1]
    z = np.maximum(1.0 - Y * (((X - mean) / scale) @ W.T + b), 0.0)
    return 0.5 * float(np.sum(W * W) + np.sum(b * b) / scaling**2) + float(np.sum(z * z))


@pytest.mark.parametrize(("k", "scaling"), [(2, 1.0), (9, 1.0), (9, 3.0)])
def test_wide_problem_newton_matches_lbfgs_and_liblinear(k: int, scaling: float) -> None:
    # 2 n <= p takes the exact row-space Newton solver; a warm start forces L-BFGS on the
    # same problem, so both solvers of the one objective are compared.
    X, y = _tiles(n=150, p=300, k=k, seed=5)
    Xtr, ytr = X[:120], y[:120]
    newton = FastLinearSVC(intercept_scaling=scaling).fit(Xtr, ytr)
    assert newton.n_iter_ < 20  # a handful of Newton steps, not hundreds of L-BFGS iterations
    K = 1 if k == 2 else k
    lbfgs = FastLinearSVC(intercept_scaling=scaling, tol=1e-9, max_iter=5000).fit(
        Xtr, ytr, warm_start=np.zeros((K, 301))
    )
    args = (Xtr, ytr, newton.classes_, scaling)
    f_newton = _objective(newton.mean_, newton.scale_, newton.coef_std_, *args)
    f_lbfgs = _objective(lbfgs.mean_, lbfgs.scale_, lbfgs.coef_std_, *args)
    assert f_newton <= f_lbfgs * (1 + 1e-9)  # never worse than the iterative solver
    np.testing.assert_allclose(newton.coef_std_, lbfgs.coef_std_, atol=1e-4)
    if scaling == 1.0:  # scikit-learn's default intercept_scaling: same objective, same labels
        scaler, svc = _sk(Xtr, ytr)
        coef_sk = np.hstack([svc.coef_, svc.intercept_[:, None]])
        assert f_newton <= _objective(scaler.mean_, scaler.scale_, coef_sk, *args) * (1 + 1e-9)
        np.testing.assert_array_equal(
            newton.predict(X[120:]), svc.predict(scaler.transform(X[120:]))
        )


def _gap(fit: FastLinearSVC, X: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Primal objective and duality gap of each class, from first principles (C = 1, s = 1):
    the dual D(a) = sum a - 0.5 ||sum a_i y_i x_i||^2 - sum a^2 / 4 at a = 2 max(0, 1 - y w.x)."""
    Xa = np.hstack([(X - fit.mean_) / fit.scale_, np.ones((len(y), 1))])
    Y = np.where(y[:, None] == fit.classes_[None, :], 1.0, -1.0)
    if fit.coef_std_.shape[0] == 1:
        Y = Y[:, 1:]
    Wb = fit.coef_std_.T
    z = np.maximum(1.0 - Y * (Xa @ Wb), 0.0)
    primal = 0.5 * np.sum(Wb * Wb, axis=0) + np.sum(z * z, axis=0)
    a = 2.0 * z
    v = Xa.T @ (a * Y)
    dual = a.sum(axis=0) - 0.5 * np.sum(v * v, axis=0) - np.sum(a * a, axis=0) / 4.0
    return primal, primal - dual


def test_every_solver_stops_on_the_relative_duality_gap() -> None:
    # tol is the relative duality gap; a looser tol stops earlier, a tighter one lands nearer
    # the optimum, and the gap bounds the distance to it: ||w - w*||^2 <= 2 gap.
    X, y = _tiles(n=900, p=48, seed=6)
    fits = {tol: FastLinearSVC(solver="lbfgs", tol=tol).fit(X, y) for tol in (1e-2, 1e-5, 1e-9)}
    for tol, fit in fits.items():
        primal, gap = _gap(fit, X, y)
        assert fit.converged_ and np.all(gap <= tol * primal * (1 + 1e-6))
        np.testing.assert_allclose(fit.duality_gap_, gap / primal, rtol=1e-4, atol=1e-12)
    assert fits[1e-2].n_iter_ < fits[1e-5].n_iter_ < fits[1e-9].n_iter_
    best = fits[1e-9].coef_std_
    for tol in (1e-2, 1e-5):
        primal, gap = _gap(fits[tol], X, y)
        dist2 = np.sum((fits[tol].coef_std_ - best) ** 2, axis=1)
        assert np.all(dist2 <= 2.0 * gap + 1e-9)
    for solver in ("dual", "liblinear"):
        fit = FastLinearSVC(solver=solver, tol=1e-5).fit(X, y)
        primal, gap = _gap(fit, X, y)
        assert fit.solver_.startswith(solver) and np.all(gap <= 1e-5 * primal * (1 + 1e-6))


def _stationarity(fit: FastLinearSVC, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Primal gradient norm of each class at the fit, relative to its norm at w = 0.

    For the squared hinge the dual optimum has a_i = 2C max(0, 1 - y_i w.x_i) and
    w = sum_i a_i y_i x_i (KKT), i.e. a zero primal gradient; this measures how far off it is.
    """
    Xa = np.hstack([(X - fit.mean_) / fit.scale_, np.ones((len(y), 1))])
    Y = np.where(y[:, None] == fit.classes_[None, :], 1.0, -1.0)
    if fit.coef_std_.shape[0] == 1:
        Y = Y[:, 1:]
    Wb = fit.coef_std_.T
    a = 2.0 * np.maximum(1.0 - Y * (Xa @ Wb), 0.0)  # C = 1
    g0 = np.linalg.norm(Xa.T @ (2.0 * Y), axis=0)  # every row is inside the margin at w = 0
    return np.linalg.norm(Wb - Xa.T @ (a * Y), axis=0) / g0


@pytest.mark.parametrize("k", [2, 9])
def test_dual_solver_reaches_the_exact_newton_minimiser(k: int) -> None:
    # A wide problem (2 n <= p) where the row-space Newton solver is exact: the dual
    # coordinate descent, asked for a tight projected-gradient spread, lands on the same weights.
    X, y = _tiles(n=150, p=300, k=k, seed=7)
    Xtr, ytr = X[:120], y[:120]
    newton = FastLinearSVC().fit(Xtr, ytr)
    dual = FastLinearSVC(solver="dual", dual_tol=1e-8, max_iter=100_000).fit(Xtr, ytr)
    np.testing.assert_allclose(dual.coef_std_, newton.coef_std_, atol=1e-6)
    assert np.all(_stationarity(dual, Xtr, ytr) < 1e-7)
    np.testing.assert_array_equal(dual.predict(X[120:]), newton.predict(X[120:]))


def test_dual_is_the_default_for_tall_problems_and_agrees_with_lbfgs() -> None:
    # p < n <= 4 p: the default solver is the dual one; certified to the same duality gap,
    # it and L-BFGS give the same objective and labels, in float32 products too.
    X, y = _tiles(n=1200, p=240, seed=8)
    Xtr, ytr = X[:900], y[:900]
    dual = FastLinearSVC().fit(Xtr, ytr)
    lbfgs = FastLinearSVC(solver="lbfgs").fit(Xtr, ytr)
    forced = FastLinearSVC(solver="dual").fit(Xtr, ytr)
    assert dual.solver_.startswith("dual") and lbfgs.solver_.startswith("lbfgs")
    np.testing.assert_array_equal(dual.coef_std_, forced.coef_std_)  # auto chose the dual
    args = (Xtr, ytr, dual.classes_)
    f_dual = _objective(dual.mean_, dual.scale_, dual.coef_std_, *args)
    f_lbfgs = _objective(lbfgs.mean_, lbfgs.scale_, lbfgs.coef_std_, *args)
    assert f_dual == pytest.approx(f_lbfgs, rel=1e-6)
    np.testing.assert_array_equal(dual.predict(X[900:]), lbfgs.predict(X[900:]))
    assert np.all(_stationarity(dual, Xtr, ytr) < 1e-3)
    single = FastLinearSVC(dtype=np.float32).fit(Xtr, ytr)
    assert single.converged_
    np.testing.assert_allclose(single.coef_std_, dual.coef_std_, atol=1e-3)


def test_solver_options_are_checked() -> None:
    X, y = _tiles(n=200, p=8, seed=9)
    with pytest.raises(ConfigError, match="solver"):
        FastLinearSVC(solver="tron").fit(X, y)
    with pytest.raises(ConfigError, match="dual_tol"):
        FastLinearSVC(dual_tol=0.0).fit(X, y)
    with pytest.raises(ConfigError, match="warm_start"):
        FastLinearSVC(solver="dual").fit(X, y, warm_start=np.zeros((9, 9)))
    with pytest.raises(ConfigError, match="tol"):
        FastLinearSVC(tol=0.0).fit(X, y)


def test_a_fit_that_runs_out_of_iterations_is_reported() -> None:
    X, y = _tiles(n=900, p=300, seed=10)
    with pytest.warns(ConvergenceWarning, match="duality gap"):
        short = FastLinearSVC(solver="dual", max_iter=5).fit(X, y)  # 5 epochs, 5 L-BFGS steps
    assert not short.converged_ and short.n_iter_ <= 10 and short.solver_ == "dual+lbfgs"
    assert np.any(short.duality_gap_ > short.tol)
    full = FastLinearSVC(solver="dual").fit(X, y)
    assert full.converged_ and np.all(full.duality_gap_ <= full.tol)
    args = (X, y, full.classes_)
    f_short = _objective(short.mean_, short.scale_, short.coef_std_, *args)
    assert _objective(full.mean_, full.scale_, full.coef_std_, *args) < f_short
    # Many rows per feature: auto takes L-BFGS outright (the dual needs thousands of epochs).
    X, y = _tiles(n=1800, p=96, seed=8)
    np.testing.assert_array_equal(
        FastLinearSVC().fit(X, y).coef_std_, FastLinearSVC(solver="lbfgs").fit(X, y).coef_std_
    )
