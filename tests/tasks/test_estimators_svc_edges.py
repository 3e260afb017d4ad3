"""FastLinearSVC's solvers each on their own: every solver's raw output against scikit-learn's
liblinear at a tight tolerance, the certificate's formulas, L-BFGS's pieces, the row-space Newton
solver and the compiled dual, the parameter checks and the ``auto`` rule at its thresholds.

A loose ``tol`` (the certified relative duality gap) keeps the float64 L-BFGS polish from
running, so a wrong first solver is seen as wrong instead of being repaired by the polish.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from histobench.plugins.errors import ConfigError, DataError
from histobench.tasks.estimators import linear_svc
from histobench.tasks.estimators._svc_dual import dual_cd
from histobench.tasks.estimators._svc_newton import _solve_pd, kernel_newton
from histobench.tasks.estimators._svc_primal import (
    BLOCK_ROWS,
    MEMORY,
    _direction,
    _line_search,
    fun_grad_gap,
    lbfgs,
)
from histobench.tasks.estimators.linear_svc import FastLinearSVC, choose_solver

C, S = 0.5, 2.0  # not scikit-learn's defaults: a C or intercept_scaling that is dropped shows


def _data(n: int = 90, p: int = 6, k: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Overlapping classes (not separable), columns with offsets and mixed scales."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    X = rng.normal(size=(n, p)) + 0.8 * rng.normal(size=(k, p))[y]
    X = X * rng.uniform(0.5, 4.0, size=p) + rng.uniform(-3.0, 3.0, size=p)
    return X, np.array(["a", "b", "c", "d"])[y]


def _labels(y: np.ndarray, classes: np.ndarray) -> np.ndarray:
    Y = np.where(y[:, None] == classes[None, :], 1.0, -1.0)
    return Y[:, 1:] if classes.size == 2 else Y


def _augment(X: np.ndarray, mean: np.ndarray, scale: np.ndarray, s: float) -> np.ndarray:
    return np.hstack([(X - mean) / scale, np.full((len(X), 1), s)])


def _reference(Xs: np.ndarray, y: np.ndarray, c: float, s: float) -> np.ndarray:
    """The exact minimiser, as (K, p + 1) ``[w, b]`` (``coef_std_``): primal Newton in the
    feature space (the squared hinge is quadratic on a fixed set of margin violators), to a
    gradient of 1e-11 relative to the gradient at 0."""
    Xa = np.hstack([Xs, np.full((len(Xs), 1), s)])
    classes = np.unique(y)
    Y = _labels(y, classes)
    out = np.empty((Y.shape[1], Xa.shape[1]))
    for k in range(Y.shape[1]):
        yk, w = Y[:, k], np.zeros(Xa.shape[1])
        g0 = np.linalg.norm(2.0 * c * Xa.T @ yk)
        for _ in range(100):
            act = yk * (Xa @ w) < 1.0
            grad = w - 2.0 * c * Xa[act].T @ (yk[act] * (1.0 - yk[act] * (Xa[act] @ w)))
            if np.linalg.norm(grad) <= 1e-11 * g0:
                break
            hess = np.eye(Xa.shape[1]) + 2.0 * c * Xa[act].T @ Xa[act]
            step, d = 1.0, np.linalg.solve(hess, grad)
            while (
                _objective(Xa, yk[:, None], (w - step * d)[:, None], c)[0]
                > _objective(Xa, yk[:, None], w[:, None], c)[0]
                and step > 1e-12
            ):
                step /= 2.0
            w = w - step * d
        else:  # pragma: no cover
            raise AssertionError("reference Newton did not converge")
        out[k] = w
    out[:, -1] *= s
    return out


def _objective(Xa: np.ndarray, Y: np.ndarray, W: np.ndarray, c: float) -> np.ndarray:
    z = np.maximum(1.0 - Y * (Xa @ W), 0.0)
    return 0.5 * np.sum(W * W, axis=0) + c * np.sum(z * z, axis=0)


def _gap(Xa: np.ndarray, Y: np.ndarray, W: np.ndarray, c: float) -> np.ndarray:
    """P(w) - D(a(w)) from the definitions: a = 2 C z, D(a) = sum a - 0.5 ||X'(a y)||^2 - sum a^2/4C."""
    z = np.maximum(1.0 - Y * (Xa @ W), 0.0)
    a = 2.0 * c * z
    v = Xa.T @ (a * Y)
    dual = a.sum(0) - 0.5 * np.sum(v * v, axis=0) - np.sum(a * a, axis=0) / (4.0 * c)
    return _objective(Xa, Y, W, c) - dual


# --- the auto rule and the parameter checks -------------------------------------------------


def test_auto_rule_at_its_thresholds() -> None:
    assert choose_solver("auto", 50, 100, False) == "newton"  # 2 n = p
    assert choose_solver("auto", 51, 100, False) == "dual"
    assert choose_solver("auto", 400, 100, False) == "dual"  # n = 4 p
    assert choose_solver("auto", 401, 100, False) == "lbfgs"
    assert choose_solver("auto", 50, 100, True) == "lbfgs"  # a warm start: only L-BFGS uses it
    for solver in ("newton", "dual", "lbfgs", "liblinear"):
        assert choose_solver(solver, 401, 100, True) == solver


@pytest.mark.parametrize("name", ["C", "tol", "dual_tol", "intercept_scaling"])
def test_each_positive_parameter_is_checked(name: str) -> None:
    X, y = _data(n=30, p=3)
    bad0: dict[str, Any] = {name: 0}
    bad1: dict[str, Any] = {name: -1}
    with pytest.raises(ConfigError, match=rf"^{name}: must be positive, got 0$"):
        FastLinearSVC(**bad0).fit(X, y)
    with pytest.raises(ConfigError, match=rf"^{name}: must be positive, got -1$"):
        FastLinearSVC(**bad1).fit(X, y)


def test_other_parameter_checks_and_their_messages() -> None:
    X, y = _data(n=30, p=3)
    msg = r"^solver: expected one of \('auto', 'newton', 'dual', 'lbfgs', 'liblinear'\), got 'x'$"
    with pytest.raises(ConfigError, match=msg):
        FastLinearSVC(solver="x").fit(X, y)
    with pytest.raises(ConfigError, match=r"^max_iter: must be at least 1, got 0$"):
        FastLinearSVC(max_iter=0).fit(X, y)
    with pytest.warns(ConvergenceWarning):  # accepted: one iteration, one more to polish
        assert FastLinearSVC(max_iter=1, solver="lbfgs").fit(X, y).n_iter_ == 2
    for solver in ("newton", "dual", "liblinear"):
        with pytest.raises(ConfigError, match=rf"^warm_start: only L-BFGS .*not '{solver}'$"):
            FastLinearSVC(solver=solver).fit(X, y, warm_start=np.zeros((3, 4)))
    for solver in ("auto", "lbfgs"):  # both accepted, and L-BFGS runs
        fit = FastLinearSVC(solver=solver).fit(X, y, warm_start=np.zeros((3, 4)))
        assert fit.solver_ == "lbfgs" and fit.converged_
    with pytest.raises(DataError, match=r"^y: need at least 2 classes, got 1 class$"):
        FastLinearSVC().fit(X, np.zeros(30))


# --- every solver's own output ----------------------------------------------------------------


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("solver", ["newton", "dual", "lbfgs", "liblinear"])
def test_each_solver_alone_reaches_liblinears_minimiser(solver: str, k: int) -> None:
    X, y = _data(k=k, seed=k)
    Xtr, ytr, Xte = X[:70], y[:70], X[70:]
    mean, scale = Xtr.mean(0), Xtr.std(0)
    ref = _reference((Xtr - mean) / scale, ytr, C, S)
    # tol = 10 (relative gap) certifies the first solver's weights as they are, unpolished;
    # L-BFGS's own stop is tol, so it gets a tight one.
    tol = 1e-13 if solver == "lbfgs" else 10.0
    max_iter = 3000 if solver == "lbfgs" else 100_000
    fit = FastLinearSVC(C=C, intercept_scaling=S, solver=solver, tol=tol, dual_tol=1e-10,
                        max_iter=max_iter).fit(Xtr, ytr)  # fmt: skip
    assert fit.solver_ == solver and fit.converged_
    np.testing.assert_allclose(fit.coef_std_, ref, atol=2e-6)
    np.testing.assert_allclose(fit.mean_, mean)
    np.testing.assert_allclose(fit.scale_, scale)
    # Original feature scale: the decision values of the standardised model.
    np.testing.assert_allclose(fit.coef_, ref[:, :-1] / scale, atol=1e-5)
    d_ref = ((Xte - mean) / scale) @ ref[:, :-1].T + ref[:, -1]
    d = fit.decision_function(Xte)
    assert d.shape == ((len(Xte),) if k == 2 else (len(Xte), k))
    np.testing.assert_allclose(d, d_ref[:, 0] if k == 2 else d_ref, atol=2e-5)
    idx = (d_ref[:, 0] > 0).astype(int) if k == 2 else d_ref.argmax(1)
    np.testing.assert_array_equal(fit.predict(Xte), fit.classes_[idx])
    # The recorded objective and relative gap are those of the returned weights.
    Xa = _augment(Xtr, mean, scale, S)
    W = fit.coef_std_.T.copy()
    W[-1] /= S
    Y = _labels(ytr, fit.classes_)
    f = _objective(Xa, Y, W, C)
    np.testing.assert_allclose(fit.objective_, f, rtol=1e-9)
    np.testing.assert_allclose(fit.duality_gap_, _gap(Xa, Y, W, C) / f, rtol=1e-5, atol=1e-12)


def test_unstandardised_fit_is_liblinear_on_the_raw_columns() -> None:
    X, y = _data(seed=11)
    fit = FastLinearSVC(C=C, intercept_scaling=S, standardize=False, solver="dual", tol=10.0,
                        dual_tol=1e-10, max_iter=100_000).fit(X, y)  # fmt: skip
    np.testing.assert_array_equal(fit.mean_, np.zeros(6))
    np.testing.assert_array_equal(fit.scale_, np.ones(6))
    ref = _reference(X, y, C, S)
    np.testing.assert_allclose(fit.coef_std_, ref, atol=2e-6)
    np.testing.assert_allclose(fit.coef_, ref[:, :-1], atol=2e-6)
    np.testing.assert_allclose(fit.intercept_, ref[:, -1], atol=2e-6)


def test_dual_path_passes_its_arguments_and_reports_its_epochs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    X, y = _data(n=120, p=8, seed=12)
    calls: list[tuple] = []

    def spy(Xd, Yt, c, eps, max_iter, seed, W):  # type: ignore[no-untyped-def]
        out = dual_cd(Xd, Yt, c, eps, max_iter, seed, W)
        calls.append((Xd.dtype, W.dtype, Yt.shape, c, eps, max_iter, seed, out[0].copy()))
        return out

    monkeypatch.setattr(linear_svc, "dual_cd", spy)
    fit = FastLinearSVC(C=C, solver="dual", dtype=np.float32, dual_tol=1e-3, max_iter=777,
                        tol=10.0).fit(X, y)  # fmt: skip
    ((xdt, wdt, shape, c, eps, max_iter, seed, epochs),) = calls
    assert (xdt, wdt, shape, c, eps, max_iter, seed) == (
        np.float32,
        np.float32,
        (3, 120),
        C,
        1e-3,
        777,
        0,
    )
    assert fit.n_iter_ == epochs.max() and epochs.min() < epochs.max()
    assert fit.solver_ == "dual"
    calls.clear()
    FastLinearSVC(solver="dual", tol=10.0).fit(X, y)
    assert calls[0][:2] == (np.float64, np.float64)


def test_iterations_of_a_polished_fit_add_up() -> None:
    # The dual stops early (dual_tol = 0.5), the certificate's L-BFGS finishes: n_iter_ is the
    # dual's epochs plus the polish's iterations, each counted once.
    X, y = _data(n=120, p=8, seed=13)
    fit = FastLinearSVC(C=C, intercept_scaling=S, solver="dual", dual_tol=0.5).fit(X, y)
    assert fit.solver_ == "dual+lbfgs" and fit.converged_
    mean, scale = X.mean(0), X.std(0)
    Xa = _augment(X, mean, scale, S)
    Y = _labels(y, fit.classes_)
    Wd = np.zeros((3, 9))
    epochs, _ = dual_cd(Xa, np.ascontiguousarray(Y.T), C, 0.5, 1000, 0, Wd)
    W0 = Wd.T.copy()
    f, _, gap = fun_grad_gap(Xa, Y, W0, C)
    todo = np.flatnonzero(gap > 1e-6 * f)
    _, iters = lbfgs(Xa, Y[:, todo], C, W0[:, todo].copy(), 1e-6, 1000)
    assert fit.n_iter_ == epochs.max() + iters.max()
    assert np.all(fit.duality_gap_ <= 1e-6)


def test_warm_start_from_a_fit_needs_no_iteration() -> None:
    # coef_std_ (intercept in the standardised space) is a warm start: from the optimum of the
    # same problem L-BFGS has nothing left to do, also with intercept_scaling != 1.
    X, y = _data(seed=14)
    first = FastLinearSVC(C=C, intercept_scaling=S, tol=1e-9).fit(X, y)
    again = FastLinearSVC(C=C, intercept_scaling=S, tol=1e-9).fit(X, y, warm_start=first.coef_std_)
    assert again.solver_ == "lbfgs" and again.n_iter_ == 0
    np.testing.assert_array_equal(again.coef_std_, first.coef_std_)


def test_a_short_fit_warns_with_its_gap_and_solvers() -> None:
    X, y = _data(n=200, p=20, seed=15)
    with pytest.warns(ConvergenceWarning) as record:
        fit = FastLinearSVC(solver="dual", max_iter=1, tol=1e-9).fit(X, y)
    (w,) = record
    gap = fit.duality_gap_.max()
    assert str(w.message) == (
        f"FastLinearSVC: relative duality gap {gap:.2e} > tol=1e-09 after max_iter=1 (dual+lbfgs)"
    )
    assert not fit.converged_ and fit.n_iter_ == 2  # one epoch, one L-BFGS iteration


def test_certificate_polishes_only_the_classes_that_fail_it() -> None:
    X, y = _data(seed=16)
    mean, scale = X.mean(0), X.std(0)
    Xa = _augment(X, mean, scale, 1.0)
    Y = _labels(y, np.unique(y))
    W = _reference(Xa[:, :-1], y, 1.0, 1.0).T  # every class at the optimum
    est = FastLinearSVC(tol=1e-6)
    out = est._certify(Xa, Y, W.copy(), 7, ["x"])
    np.testing.assert_array_equal(out[0], W)
    assert out[1:3] == (7, ["x"]) and out[5] is True
    f, _, gap = fun_grad_gap(Xa, Y, W, 1.0)
    np.testing.assert_array_equal(out[3], f)
    np.testing.assert_array_equal(out[4], gap / f)
    W1 = W.copy()
    W1[:, 1] = 0.0  # class 1 far from it
    Wc, n_iter, used, f1, gap1, ok = est._certify(Xa, Y, W1.copy(), 7, ["x"])
    np.testing.assert_array_equal(Wc[:, [0, 2]], W[:, [0, 2]])  # untouched
    _, iters = lbfgs(Xa, Y[:, [1]], 1.0, np.zeros((7, 1)), 1e-6, 1000)
    assert n_iter == 7 + iters.max() and used == ["x", "lbfgs"] and ok
    assert gap1[1] <= 1e-6 and np.all(gap1 == fun_grad_gap(Xa, Y, Wc, 1.0)[2] / f1)


# --- the primal: objective, gradient, gap, L-BFGS ---------------------------------------------


def _primal_problem(n: int = 600, seed: int = 17) -> tuple[np.ndarray, np.ndarray]:
    X, y = _data(n=n, p=5, seed=seed)
    Xa = _augment(X, X.mean(0), X.std(0), 1.5)
    return Xa, _labels(y, np.unique(y))


def test_objective_gradient_and_gap_against_their_definitions() -> None:
    Xa, Y = _primal_problem()  # 600 rows: blocks of 256, 256 and 88
    assert Xa.shape[0] > 2 * BLOCK_ROWS
    W = np.random.default_rng(0).normal(size=(6, 3)) * 0.3
    f, G, gap = fun_grad_gap(Xa, Y, W, C)
    z = np.maximum(1.0 - Y * (Xa @ W), 0.0)
    np.testing.assert_allclose(f, _objective(Xa, Y, W, C), rtol=1e-12)
    np.testing.assert_allclose(G, W - 2.0 * C * Xa.T @ (Y * z), rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(gap, _gap(Xa, Y, W, C), rtol=1e-10)
    # Float32 products: the same numbers to float32 rounding, returned in float64.
    f32, G32, gap32 = fun_grad_gap(Xa.astype(np.float32), Y, W, C)
    assert f32.dtype == G32.dtype == gap32.dtype == np.float64
    np.testing.assert_allclose(f32, f, rtol=1e-5)
    np.testing.assert_allclose(gap32, gap, rtol=1e-4)
    # At the optimum the gap is ~0 and never negative.
    Wopt = _reference(Xa[:, :-1], np.argmax(Y, axis=1), C, 1.5).T
    Wopt[-1] /= 1.5
    f0, G0, gap0 = fun_grad_gap(Xa, Y, Wopt, C)
    assert np.all(gap0 >= 0.0) and np.all(gap0 <= 1e-8 * f0)
    assert np.max(np.abs(G0)) < 1e-5


def test_lbfgs_stops_each_class_on_its_own_gap() -> None:
    Xa, Y = _primal_problem(n=300)
    Wopt = np.empty((6, 3))
    for c in range(3):  # each class's optimum from scratch, tightly
        Wopt[:, [c]] = lbfgs(Xa, Y[:, [c]], C, np.zeros((6, 1)), 1e-14, 5000)[0]
    W0 = np.zeros((6, 3))
    W0[:, 1] = Wopt[:, 1]  # class 1 starts at its optimum: no iteration, no change
    W, n_iter = lbfgs(Xa, Y, C, W0.copy(), 1e-8, 1000)
    assert n_iter[1] == 0 and np.array_equal(W[:, 1], Wopt[:, 1])
    assert np.all(n_iter[[0, 2]] > 0)
    f, _, gap = fun_grad_gap(Xa, Y, W, C)
    assert np.all(gap <= 1e-8 * f)
    np.testing.assert_allclose(W, Wopt, atol=2e-4)
    # Few iterations on this well-conditioned problem (curvature pairs in use, not steepest
    # descent): a bound with room, measured 11-13 here.
    assert n_iter.max() <= 25
    # max_iter caps every class that is still iterating.
    _, n2 = lbfgs(Xa, Y, C, W0.copy(), 1e-8, 2)
    np.testing.assert_array_equal(n2, [2, 0, 2])


def test_lbfgs_stops_when_no_decrease_is_left() -> None:
    # An unreachable tol: each class stops once its line search finds no decrease at float64
    # precision, long before max_iter, and is at the optimum.
    Xa, Y = _primal_problem(n=300)
    W, n_iter = lbfgs(Xa, Y, C, np.zeros((6, 3)), 1e-300, 500)
    assert np.all(n_iter < 100)  # measured 12-15
    Wref = lbfgs(Xa, Y, C, np.zeros((6, 3)), 1e-13, 500)[0]
    np.testing.assert_allclose(W, Wref, atol=1e-6)


def test_lbfgs_uses_its_curvature_pairs_on_an_ill_conditioned_problem() -> None:
    # Speed, not the answer: on columns whose scales span 2.5 decades L-BFGS took 1,094
    # iterations over the three classes; without usable curvature pairs (steepest descent with
    # Barzilai-Borwein steps) or with a stale scale it took 1,450-2,850. A bound with room.
    rng = np.random.default_rng(21)
    y = np.arange(400) % 3
    X = rng.normal(size=(400, 30)) + 0.7 * rng.normal(size=(3, 30))[y]
    Xa = np.hstack([X * np.logspace(-1.5, 1.0, 30), np.ones((400, 1))])
    Y = np.where(y[:, None] == np.arange(3)[None, :], 1.0, -1.0)
    W, n_iter = lbfgs(Xa, Y, 0.5, np.zeros((31, 3)), 1e-8, 5000)
    f, _, gap = fun_grad_gap(Xa, Y, W, 0.5)
    assert np.all(gap <= 1e-8 * f) and n_iter.sum() <= 1300


def test_two_loop_direction_is_the_bfgs_inverse_hessian() -> None:
    # The two-loop recursion equals -H g, with H the BFGS inverse-Hessian update of gamma * I
    # by the stored pairs, oldest first (memory full and wrapped around); then with only three
    # pairs, where the empty slots change nothing.
    rng = np.random.default_rng(3)
    p1, K, it = 5, 2, 23
    A = rng.normal(size=(p1, p1))
    H_true = A @ A.T + p1 * np.eye(p1)
    gamma = np.array([0.3, 0.7])
    G = rng.normal(size=(p1, K))
    for pairs in (list(range(it - MEMORY, it)), [it - 3, it - 2, it - 1]):
        S, Yp, rho = np.zeros((MEMORY, p1, K)), np.zeros((MEMORY, p1, K)), np.zeros((MEMORY, K))
        for j in pairs:
            s = rng.normal(size=(p1, K))
            S[j % MEMORY], Yp[j % MEMORY] = s, H_true @ s
            rho[j % MEMORY] = 1.0 / np.einsum("ij,ij->j", s, H_true @ s)
        q = _direction(G, S, Yp, rho, gamma, np.arange(K), it)
        for c in range(K):
            H = gamma[c] * np.eye(p1)
            for j in pairs:
                s, yv, r = S[j % MEMORY][:, c], Yp[j % MEMORY][:, c], rho[j % MEMORY, c]
                V = np.eye(p1) - r * np.outer(yv, s)
                H = V.T @ H @ V + r * np.outer(s, s)
            np.testing.assert_allclose(q[:, c], -H @ G[:, c], rtol=1e-10)
    # A subset of classes uses its own pairs and scale.
    q1 = _direction(G[:, [1]], S, Yp, rho, gamma, np.array([1]), it)
    np.testing.assert_allclose(q1[:, 0], q[:, 1], rtol=1e-12)
    # No pairs: scaled steepest descent.
    zero = np.zeros((MEMORY, K))
    np.testing.assert_allclose(_direction(G, S, Yp, zero, gamma, np.arange(K), it), -gamma * G)
    # Negative curvature along s (y = -s) and g = s: -H g = s is an ascent direction (here with
    # 0 < g.q < 1), so the fallback, scaled steepest descent, is taken for that class only.
    Gb = G.copy()
    Gb[:, 1] *= 0.3 / np.linalg.norm(Gb[:, 1])
    s1 = Gb[:, 1].copy()
    S2, Y2, rho2 = S.copy(), Yp.copy(), rho.copy()
    S2[:, :, 1] = Y2[:, :, 1] = rho2[:, 1] = 0.0
    S2[0][:, 1], Y2[0][:, 1], rho2[0, 1] = s1, -s1, -1.0 / (s1 @ s1)
    qb = _direction(Gb, S2, Y2, rho2, gamma, np.arange(K), 1)
    np.testing.assert_allclose(qb[:, 1], -gamma[1] * Gb[:, 1], rtol=1e-15)
    assert Gb[:, 0] @ qb[:, 0] < 0 and not np.allclose(qb[:, 0], -gamma[0] * Gb[:, 0])


def test_line_search_backtracks_like_armijo_with_quadratic_steps() -> None:
    Xa, Y = _primal_problem(n=300)
    W0 = np.random.default_rng(4).normal(size=(6, 3))
    f0, G0, _ = fun_grad_gap(Xa, Y, W0, C)
    q = -G0 * np.array([1e-3, 1e-2, 1.0])  # unit step accepted, backtracked once, several times
    Wn, fn, Gn, gn, stuck = _line_search(Xa, Y, C, W0, f0, G0, q)
    assert not stuck.any()
    gd = np.einsum("ij,ij->j", G0, q)
    for c in range(3):  # the step the rule takes, written out for one class
        t = 1.0
        for _ in range(20):
            ft = fun_grad_gap(Xa, Y[:, [c]], W0[:, [c]] + t * q[:, [c]], C)[0][0]
            if ft <= f0[c] + 1e-4 * t * gd[c] and ft < f0[c]:
                break
            curv = ft - f0[c] - gd[c] * t
            t = float(np.clip(-gd[c] * t * t / (2.0 * max(curv, 1e-300)), 0.1 * t, 0.5 * t))
        np.testing.assert_allclose(Wn[:, c], W0[:, c] + t * q[:, c], rtol=1e-12)
        assert (t == 1.0) == (c == 0) and (t > 0.1) == (c < 2)
    f, G, gap = fun_grad_gap(Xa, Y, Wn, C)
    np.testing.assert_allclose(fn, f, rtol=1e-12)
    np.testing.assert_allclose(Gn, G, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(gn, gap, rtol=1e-10)
    # An ascent direction never decreases f: stuck after the 20 backtracks, nothing moved.
    Wn, fn, Gn, gn, stuck = _line_search(Xa, Y, C, W0, f0, G0, G0)
    assert stuck.all() and np.array_equal(Wn, W0) and np.array_equal(fn, f0)
    assert np.array_equal(Gn, G0) and np.all(gn == np.inf)


# --- row-space Newton -------------------------------------------------------------------------


def test_kernel_newton_is_the_exact_minimiser() -> None:
    X, y = _data(n=40, p=60, k=3, seed=18)
    Xs = (X - X.mean(0)) / X.std(0)
    Y = _labels(y, np.unique(y))
    W, steps = kernel_newton(Xs, Y, C, S)
    ref = _reference(Xs, y, C, S).T
    ref[-1] /= S
    np.testing.assert_allclose(W, ref, atol=1e-7)
    assert 1 < steps < 10
    # max_iter caps the steps; the count is the steps taken.
    W1, s1 = kernel_newton(Xs, Y, C, S, max_iter=1)
    assert s1 == 1 and not np.allclose(W1, W, atol=1e-3)
    assert kernel_newton(Xs, Y, C, S, max_iter=steps - 1)[1] == steps - 1
    # Rows not all violators at the optimum: the active set is a real subset.
    Xa = np.hstack([Xs, np.full((40, 1), S)])
    assert np.any(Y * (Xa @ W) > 1.0)


def test_solve_pd_falls_back_when_not_positive_definite() -> None:
    rng = np.random.default_rng(5)
    A = rng.normal(size=(6, 6))
    pd = A @ A.T + np.eye(6)
    indefinite = A + A.T  # symmetric, with negative eigenvalues
    assert np.linalg.eigvalsh(indefinite).min() < 0
    b = rng.normal(size=6)
    np.testing.assert_allclose(_solve_pd(pd.copy(), b.copy()), np.linalg.solve(pd, b), rtol=1e-10)
    np.testing.assert_allclose(
        _solve_pd(indefinite.copy(), b.copy()), np.linalg.solve(indefinite, b), rtol=1e-10
    )


# --- the compiled dual --------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_dual_cd_alone_reaches_the_minimiser(dtype: Any) -> None:
    X, y = _data(n=120, p=8, seed=19)
    Xs = (X - X.mean(0)) / X.std(0)
    Xa = np.hstack([Xs, np.full((120, 1), S)]).astype(dtype)
    Y = _labels(y, np.unique(y))
    W = np.zeros((3, 9), dtype=dtype)
    epochs, done = dual_cd(Xa, np.ascontiguousarray(Y.T), C, 1e-7, 100_000, 0, W)
    assert done.all() and np.all(epochs > 1) and np.all(epochs < 100_000)
    ref = _reference(Xs, y, C, S).T
    ref[-1] /= S
    tol = 1e-6 if dtype == np.float64 else 2e-4
    np.testing.assert_allclose(W.T, ref, atol=tol)
    # Its own stopping rule: at most max_iter epochs, and not done then.
    W2 = np.zeros((3, 9), dtype=dtype)
    e2, d2 = dual_cd(Xa, np.ascontiguousarray(Y.T), C, 1e-7, 3, 0, W2)
    assert np.all(e2 == 3) and not d2.any()


def test_dual_cd_shrinks_only_on_a_positive_threshold() -> None:
    # Speed, not the answer: rows at a = 0 are shrunk when their gradient exceeds the previous
    # epoch's largest positive projected gradient. Shrinking on a non-positive threshold as
    # well still converges (the final re-check of all rows repairs it) but took 2x the epochs
    # here (52-66 against 29-31; seeded order, so the count is reproducible).
    X, y = _data(n=600, p=100, seed=4)
    Xa = np.hstack([(X - X.mean(0)) / X.std(0), np.full((600, 1), S)])
    Y = _labels(y, np.unique(y))
    epochs, done = dual_cd(Xa, np.ascontiguousarray(Y.T), C, 1e-3, 1000, 0, np.zeros((3, 101)))
    assert done.all() and epochs.max() <= 42


def test_auto_with_a_warm_start_runs_lbfgs_from_it() -> None:
    # 40 rows x 12 features: auto alone takes the dual; given a warm start it takes L-BFGS,
    # which starts from it (integer weights included: they are converted to float).
    X, y = _data(n=40, p=12, seed=20)
    assert FastLinearSVC().fit(X, y).solver_.startswith("dual")
    first = FastLinearSVC(tol=1e-9).fit(X, y)
    again = FastLinearSVC(tol=1e-9).fit(X, y, warm_start=first.coef_std_)
    assert again.solver_ == "lbfgs" and again.n_iter_ == 0
    zero = FastLinearSVC().fit(X, y, warm_start=np.zeros((3, 13), dtype=int))
    assert zero.solver_ == "lbfgs" and zero.converged_
    np.testing.assert_allclose(zero.coef_std_, first.coef_std_, atol=1e-3)
