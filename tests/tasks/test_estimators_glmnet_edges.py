"""glmnet LASSO cases found unchecked by mutation testing (see TESTING.md, "Mutation testing"):
the lambda sequence, deviance ratio and stop rules written out, the cross-validated deviance,
its standard error and the two rules against a computation from the fold paths, the
``fold_path="full"`` padding, the data layout, the fold plumbing and the input checks."""

from __future__ import annotations

import os
import re
from typing import Any

import numpy as np
import pytest
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from histobench.plugins.errors import ConfigError, DataError
from histobench.tasks.estimators import _folds, _glmnet_path, _glmnet_reference, _validation, glmnet
from histobench.tasks.estimators._glmnet_common import (
    DEVMAX,
    FDEV,
    FMAX,
    MNLAM,
    PMIN,
    VMIN,
    LogisticPath,
    dev2,
    glmnet_q,
    sigmoid,
    standardize,
)
from histobench.tasks.estimators._glmnet_path import COUNTS, Design, default_lambdas
from histobench.tasks.estimators.glmnet import (
    GlmnetLogisticCV,
    cv_logistic_lasso,
    kkt_residual,
    lambda_sequence,
    lasso_cross_val_predict,
    lasso_cross_val_predict_many,
    logistic_lasso_path,
    make_foldid,
)
from tests.tasks.lasso_data import planted_logistic

_data = planted_logistic


def _lambda_max(X: np.ndarray, y: np.ndarray) -> float:
    """max_j |x_std_j . (y - ybar)| / n over the non-constant columns, 1/n sd."""
    n = X.shape[0]
    xm = X.mean(0)
    xs = np.sqrt(((X - xm) ** 2).mean(0))
    varies = xs > 0
    Z = (X[:, varies] - xm[varies]) / xs[varies]
    return float(np.max(np.abs((y - y.mean()) @ Z))) / n


def _glmnet_deviance(y: np.ndarray, eta: np.ndarray) -> float:
    """glmnet's mean binomial deviance / 2: probabilities 0/1 beyond fmax, clipped to pmin."""
    q = 1.0 / (1.0 + np.exp(-eta))
    q[eta < -np.log(1.0 / 1e-9 - 1.0)] = 0.0
    q[eta > np.log(1.0 / 1e-9 - 1.0)] = 1.0
    q = np.clip(q, 1e-9, 1.0 - 1e-9)
    return float(-np.mean(y * np.log(q) + (1.0 - y) * np.log(1.0 - q)))


# ---- glmnet's constants, sequence, deviance and stop rules ------------------------------------


def test_glmnet_control_constants() -> None:
    assert (FDEV, DEVMAX, MNLAM, PMIN) == (1e-5, 0.999, 5, 1e-9)
    assert abs(FMAX - np.log(1e9 - 1.0)) <= 1e-14 * FMAX
    assert abs(VMIN - (1.0 + 1e-9) * 1e-9 * (1.0 - 1e-9)) <= 1e-24


@pytest.mark.parametrize(
    ("n", "p", "ratio"), [(30, 40, 0.01), (40, 40, 1e-4), (50, 8, 1e-4)]
)  # n < p, n == p (glmnet: 0.01 only when n < p), n > p
def test_lambda_sequence_closed_form(n: int, p: int, ratio: float) -> None:
    X, y = _data(n, p, n + p)
    X[:, 5] = 3.0  # a constant column never sets lambda_max
    lmax = _lambda_max(X, y)
    expected = lmax * ratio ** (np.arange(100) / 99.0)
    np.testing.assert_allclose(lambda_sequence(X, y), expected, rtol=1e-12)
    rows = np.arange(n)
    for design in (Design.of(X), None):  # compiled and reference layouts
        got = default_lambdas(X, design, rows, y, 100, None)
        np.testing.assert_allclose(got, expected, rtol=1e-12)
    for solver in ("compiled", "reference"):
        path = logistic_lasso_path(X, y, solver=solver)  # type: ignore[arg-type]
        L = path.lambdas.shape[0]
        np.testing.assert_allclose(path.lambdas, expected[:L], rtol=1e-12)


def test_lambda_sequence_options() -> None:
    X, y = _data(40, 12, 1)
    lmax = _lambda_max(X, y)
    np.testing.assert_allclose(lambda_sequence(X, y, nlambda=1), [lmax], rtol=1e-12)
    np.testing.assert_allclose(
        lambda_sequence(X, y, nlambda=5, lambda_min_ratio=0.1),
        lmax * 0.1 ** (np.arange(5) / 4.0),
        rtol=1e-12,
    )
    # ratios below 1e-6 are floored there
    seq = lambda_sequence(X, y, nlambda=3, lambda_min_ratio=1e-9)
    np.testing.assert_allclose(seq, lmax * np.array([1.0, 1e-3, 1e-6]), rtol=1e-12)
    # the rows of a subset: computed over those rows only (both layouts)
    rows = np.arange(0, 40, 2)
    expected = _lambda_max(X[rows], y[rows]) * 0.5 ** (np.arange(4) / 3)
    for design in (Design.of(X), None):
        np.testing.assert_allclose(default_lambdas(X, design, rows, y[rows], 4, 0.5), expected)
    # a constant column whose computed sd is not exactly 0 (0.1 is not a binary fraction):
    # it is constant (glmnet's ju), so it never sets lambda_max
    Xc = X.copy()
    Xc[:, 3] = 0.1
    assert Design.of(Xc).column_stats(np.arange(40))[1][3] > 0  # 2.8e-17
    assert standardize(Xc)[2][3] > 0
    expected = _lambda_max(np.delete(Xc, 3, axis=1), y) * 0.5 ** (np.arange(4) / 3)
    for design in (Design.of(Xc), None):
        got = default_lambdas(Xc, design, np.arange(40), y, 4, 0.5)
        np.testing.assert_allclose(got, expected, rtol=1e-12)
    # only constant columns: lambda_max 0
    const = np.ones((10, 3))
    np.testing.assert_array_equal(lambda_sequence(const, np.arange(10) % 2.0, nlambda=3), 0.0)
    compiled = default_lambdas(const, Design.of(const), np.arange(10), np.arange(10) % 2.0, 3, None)
    np.testing.assert_array_equal(compiled, 0.0)


@pytest.mark.parametrize("solver", ["compiled", "reference"])
def test_path_options_reach_the_solver(solver: str) -> None:
    X, y = _data(60, 20, 31)
    # integer labels are labels
    np.testing.assert_array_equal(
        logistic_lasso_path(X, y.astype(int), nlambda=10, solver=solver).coefs,  # type: ignore[arg-type]
        logistic_lasso_path(X, y, nlambda=10, solver=solver).coefs,  # type: ignore[arg-type]
    )
    lmax = _lambda_max(X, y)
    path = logistic_lasso_path(X, y, nlambda=7, lambda_min_ratio=0.2, solver=solver)  # type: ignore[arg-type]
    np.testing.assert_allclose(path.lambdas, lmax * 0.2 ** (np.arange(7) / 6.0), rtol=1e-12)
    whole = logistic_lasso_path(X, y, solver=solver)  # type: ignore[arg-type]
    assert whole.lambdas.shape[0] == 100  # not cut on these data


def test_max_newton_reaches_the_reference_solver() -> None:
    X, y = _data(60, 20, 31)
    lam = [0.05]
    exact = logistic_lasso_path(X, y, lambdas=lam, solver="reference")
    one_step = logistic_lasso_path(X, y, lambdas=lam, solver="reference", max_newton=1)
    assert np.max(np.abs(exact.coefs - one_step.coefs)) > 1e-6  # one IRLS step is not enough


@pytest.mark.parametrize("solver", ["compiled", "reference"])
def test_deviance_ratio_null_deviance_and_stop_rules(solver: str) -> None:
    rng = np.random.default_rng(38)
    Xe = rng.normal(size=(60, 40))
    ye = (Xe[:, 0] + 0.3 * Xe[:, 1] + 0.05 * rng.normal(size=60) > 0).astype(float)
    stopped = 0
    for X, y in (_data(60, 20, 31), (Xe, ye)):  # runs to the end; cut at a ratio > 0.999
        path = logistic_lasso_path(X, y, solver=solver)  # type: ignore[arg-type]
        n = y.shape[0]
        ybar = y.mean()
        dev0 = -(ybar * np.log(ybar) + (1 - ybar) * np.log(1 - ybar))
        assert path.null_dev == pytest.approx(2.0 * n * dev0, rel=1e-12)
        eta = path.decision_function(X)
        ratio = [1.0 - _glmnet_deviance(y, eta[:, k]) / dev0 for k in range(eta.shape[1])]
        np.testing.assert_allclose(path.dev_ratio, ratio, rtol=1e-7, atol=1e-9)
        assert path.dev_ratio[0] == pytest.approx(0.0, abs=1e-12)  # intercept-only at lambda_max
        np.testing.assert_allclose(path.intercepts[0], np.log(ybar / (1 - ybar)), rtol=1e-12)
        assert not path.coefs[0].any()
        # glmnet's rules, from the 5th lambda on: stop after the lambda where the ratio
        # exceeds 0.999 or grew by less than 1e-5; never before.
        d = path.dev_ratio
        L = d.shape[0]
        stops = [k >= 4 and (d[k] > 0.999 or d[k] - d[k - 1] < 1e-5) for k in range(L)]
        assert L == 100 or stops[-1]
        assert not any(stops[:-1])
        stopped += L < 100
    assert stopped == 1  # one path runs to the end, one is cut


@pytest.mark.parametrize("solver", ["compiled", "reference"])
def test_deviance_rules_start_at_the_fifth_lambda(solver: str) -> None:
    """Lambdas so close that the ratio never grows by 1e-5: the path stops at the 5th."""
    X, y = _data(50, 10, 30)
    path = logistic_lasso_path(X, y, nlambda=20, lambda_min_ratio=0.9999, solver=solver)  # type: ignore[arg-type]
    assert path.lambdas.shape[0] == 5
    assert np.all(np.diff(path.dev_ratio) < 1e-5)


def test_a_user_sequence_is_cut_only_by_saturation() -> None:
    X, y = _data(50, 10, 33)
    lam = 0.3 * _lambda_max(X, y)
    # the same lambda eight times: the ratio does not grow, a computed path would stop at 5
    path = logistic_lasso_path(X, y, lambdas=np.full(8, lam))
    assert path.lambdas.shape[0] == 8
    np.testing.assert_allclose(path.coefs, np.repeat(path.coefs[:1], 8, axis=0), atol=1e-9)
    assert path.coefs[0].any()  # lambda_max is not assumed for a user's first lambda
    # separable labels: the fit saturates (mean p (1 - p) <= vmin) and the path stops there
    rng = np.random.default_rng(34)
    Xs = rng.normal(size=(40, 3))
    ys = (Xs[:, 0] > 0).astype(float)
    Xs[:, 0] += np.where(ys > 0, 2.0, -2.0)  # a wide margin
    seq = _lambda_max(Xs, ys) * np.logspace(0, -10, 60)
    for solver in ("compiled", "reference"):
        sat = logistic_lasso_path(Xs, ys, lambdas=seq, solver=solver)  # type: ignore[arg-type]
        L = sat.lambdas.shape[0]
        assert L < 60
        q = glmnet_q(sat.decision_function(Xs))
        v = (q * (1 - q)).mean(axis=0)
        assert v[-1] <= VMIN and np.all(v[:-1] > VMIN)


def test_glmnet_probabilities_and_deviance_helpers() -> None:
    eta = np.array([-FMAX - 1.0, -FMAX + 1.0, -1.0, 0.0, 2.0, FMAX - 1.0, FMAX + 1.0])
    q = glmnet_q(eta)
    assert q[0] == 0.0 and q[-1] == 1.0
    np.testing.assert_allclose(q[1:-1], 1.0 / (1.0 + np.exp(-eta[1:-1])), rtol=1e-8)
    assert q[1] > 0.0 and q[-2] < 1.0
    np.testing.assert_allclose(
        sigmoid(np.array([-30.0, 0.0, 3.0])), 1 / (1 + np.exp([30, 0, -3])), rtol=1e-9, atol=1e-15
    )
    # dev2: mean of -loglik with probabilities clipped to [pmin, 1 - pmin]
    assert dev2(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(-np.log(1e-9))
    y = np.array([1.0, 0.0, 1.0])
    p = np.array([0.8, 0.3, 0.6])
    expected = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    assert dev2(y, p) == pytest.approx(expected, rel=1e-14)


def test_standardize_and_path_helpers() -> None:
    X, _ = _data(20, 6, 35)
    X[:, 2] = 4.0
    X[:, 4] = np.where(np.arange(20) == 7, 1.0, 0.0)  # varies in one row only
    Xs, xm, xs, keep = standardize(X)
    np.testing.assert_array_equal(keep, [0, 1, 3, 4, 5])
    np.testing.assert_allclose(xm, X.mean(0), rtol=1e-14)
    np.testing.assert_allclose(xs, X.std(0), rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(Xs, (X[:, keep] - X.mean(0)[keep]) / X.std(0)[keep], rtol=1e-12)
    coefs = np.zeros((3, 6))
    coefs[1, 1] = 0.5
    coefs[2, [1, 4]] = [0.7, -2.0]
    path = LogisticPath(np.array([3.0, 2.0, 1.0]), np.array([0.1, -0.2, 0.3]), coefs,
                        np.array([0.0, 0.1, 0.2]), 7.0)  # fmt: skip
    np.testing.assert_allclose(path.decision_function(X), X @ coefs.T + path.intercepts[None, :])
    head = path.head(2)
    np.testing.assert_array_equal(head.lambdas, [3.0, 2.0])
    np.testing.assert_array_equal(head.intercepts, [0.1, -0.2])
    np.testing.assert_array_equal(head.coefs, coefs[:2])
    np.testing.assert_array_equal(head.dev_ratio, [0.0, 0.1])
    assert head.null_dev == 7.0


def test_design_layout_and_column_stats() -> None:
    X, _ = _data(15, 5, 36)
    X[:, 3] = -2.5  # constant: scaled by 1, not 0
    d = Design.of(X)
    assert d.XT.flags.c_contiguous
    np.testing.assert_array_equal(d.XT, X.T)
    np.testing.assert_allclose(d.cm, X.mean(0), rtol=1e-14)
    cs = X.std(0)
    cs[3] = 1.0
    np.testing.assert_allclose(d.cs, cs, rtol=1e-14)
    assert d.XT32.dtype == np.float32
    np.testing.assert_allclose(d.XT32, ((X - X.mean(0)) / cs).T, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(d.cnorm, np.linalg.norm(d.XT32.astype(np.float64), axis=1))
    rows = np.array([0, 2, 3, 7, 11])
    xm, xs, varies = d.column_stats(rows)
    np.testing.assert_allclose(xm, X[rows].mean(0), rtol=1e-12)
    np.testing.assert_allclose(xs, X[rows].std(0), rtol=1e-10, atol=1e-15)
    np.testing.assert_array_equal(varies, [True, True, True, False, True])
    assert d.column_stats(rows.copy())[0] is xm  # cached per row subset
    other = d.column_stats(np.array([1, 4, 5]))[0]
    np.testing.assert_allclose(other, X[[1, 4, 5]].mean(0), rtol=1e-12)


def test_kkt_residual_absolute_at_zero_lambda_and_intercept_term() -> None:
    X, y = _data(40, 6, 37)
    Z = (X - X.mean(0)) / X.std(0)
    coef = np.zeros(6)
    b0 = np.log(y.mean() / (1 - y.mean()))
    g = (y - y.mean()) @ Z / 40
    # lambda 0: the absolute violation (the largest gradient of a zero coefficient)
    assert kkt_residual(X, y, coef, b0, 0.0) == pytest.approx(np.max(np.abs(g)), rel=1e-10)
    lam = 0.5 * np.max(np.abs(g))
    expected = max(np.max(np.abs(g)) - lam, 0.0) / lam
    assert kkt_residual(X, y, coef, b0, lam) == pytest.approx(expected, rel=1e-10)
    # a wrong intercept: the mean residual counts
    wrong = b0 + 1.0
    p = 1 / (1 + np.exp(-wrong))
    g2 = (y - p) @ Z / 40
    expected = max(np.max(np.maximum(np.abs(g2) - 10.0, 0.0)), abs(np.mean(y - p))) / 10.0
    assert kkt_residual(X, y, coef, wrong, 10.0) == pytest.approx(expected, rel=1e-10)
    # only constant columns: the intercept's gradient alone
    const = np.ones((40, 2))
    expected = abs(np.mean(y - p)) / 0.1
    assert kkt_residual(const, y, np.zeros(2), wrong, 0.1) == pytest.approx(expected, rel=1e-10)
    # a nonzero coefficient: |g_j - lambda sign(b_j)|
    coef[1] = 0.3 / X.std(0)[1]
    p3 = 1 / (1 + np.exp(-(X @ coef + b0)))
    g3 = (y - p3) @ Z / 40
    viol = np.maximum(np.abs(g3) - 0.01, 0.0)
    viol[1] = abs(g3[1] - 0.01)
    expected = max(np.max(viol), abs(np.mean(y - p3))) / 0.01
    assert kkt_residual(X, y, coef, b0, 0.01) == pytest.approx(expected, rel=1e-10)
    # at lambda 1 only the nonzero coefficient violates: |g_1 - 1| (its gradient is small)
    assert abs(g3[1]) < 0.5 and np.max(np.abs(g3)) < 1.0
    expected = max(abs(g3[1] - 1.0), abs(np.mean(y - p3)))
    assert kkt_residual(X, y, coef, b0, 1.0) == pytest.approx(expected, rel=1e-10)


# ---- cross-validation -------------------------------------------------------------------------


def _interp(values: np.ndarray, lambdas: np.ndarray, s: float) -> np.ndarray:
    """predict.glmnet's linear interpolation in lambda, clamped to the path's range."""
    if s >= lambdas[0]:
        return values[:, 0]
    if s <= lambdas[-1]:
        return values[:, -1]
    j = int(np.flatnonzero(lambdas >= s)[-1])
    w = (lambdas[j] - s) / (lambdas[j] - lambdas[j + 1])
    return (1.0 - w) * values[:, j] + w * values[:, j + 1]


def _cv_by_hand(
    X: np.ndarray, y: np.ndarray, foldid: np.ndarray, fold_path: str, nlambda: int = 100
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int, int]:
    """cv.glmnet's deviance from separately fitted fold paths: (lambdas, cvm, cvsd, idx_min,
    idx_1se, number of clamped predictions)."""
    full = logistic_lasso_path(X, y, nlambda=nlambda)
    lams = full.lambdas
    eta = np.empty((y.shape[0], lams.shape[0]))
    clamped = 0
    for f in np.unique(foldid):
        test = foldid == f
        if fold_path == "own":
            fit = logistic_lasso_path(X[~test], y[~test], nlambda=nlambda)
            e = fit.decision_function(X[test])
            for c, s in enumerate(lams):
                eta[test, c] = _interp(e, fit.lambdas, float(s))
                clamped += bool(s > fit.lambdas[0] or s < fit.lambdas[-1])
        else:  # the fold paths cut after 30 lambdas, as saturation would (see the test)
            fit = logistic_lasso_path(X[~test], y[~test], lambdas=lams).head(30)
            e = fit.decision_function(X[test])
            L = e.shape[1]
            eta[test, :L] = e
            eta[test, L:] = e[:, -1:]
            clamped += lams.shape[0] - L
    prob = np.clip(1.0 / (1.0 + np.exp(-eta)), 1e-5, 1.0 - 1e-5)
    dev = -2.0 * (y[:, None] * np.log(prob) + (1.0 - y[:, None]) * np.log(1.0 - prob))
    folds = np.unique(foldid)
    K = folds.shape[0]
    means = np.array([dev[foldid == f].mean(axis=0) for f in folds])
    w = np.array([np.sum(foldid == f) for f in folds], dtype=float)
    cvm = (w[:, None] * means).sum(0) / w.sum()
    cvsd = np.sqrt((w[:, None] * (means - cvm) ** 2).sum(0) / w.sum() / (K - 1))
    i_min = int(np.argmin(cvm))
    i_1se = int(np.flatnonzero(cvm <= cvm[i_min] + cvsd[i_min])[0])
    return lams, cvm, cvsd, i_min, i_1se, clamped


@pytest.mark.parametrize("fold_path", ["own", "full"])
def test_cv_deviance_and_rules_by_hand(fold_path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """cv.glmnet's numbers from separately fitted fold paths: own paths interpolated in lambda
    and clamped to their range, or (glmnet < 4) the full-data sequence, a fold path cut short
    padded with its last fit; clipped deviance, weighted fold means, standard error, rules."""
    if fold_path == "full":  # saturation cuts a fold path: forced here, after 30 lambdas
        real = glmnet.fit_rows

        def cut(*args: Any, **kwargs: Any) -> LogisticPath:
            path = real(*args, **kwargs)
            return path.head(30) if args[4] is not None else path

        monkeypatch.setattr(glmnet, "fit_rows", cut)
    # 53 rows in 5 folds: unequal folds, so the fold weights matter
    rng = np.random.default_rng(38)
    X = rng.normal(size=(53, 25))
    y = (X[:, 0] - 0.8 * X[:, 1] + 0.7 * rng.normal(size=53) > 0).astype(float)
    foldid = make_foldid(53, 5, rng)
    lams, cvm, cvsd, i_min, i_1se, clamped = _cv_by_hand(X, y, foldid, fold_path)
    assert clamped > 0  # the clamping / padding is exercised
    res = cv_logistic_lasso(X, y, foldid, fold_path=fold_path)  # type: ignore[arg-type]
    np.testing.assert_allclose(res.path.lambdas, lams, rtol=1e-12)
    np.testing.assert_allclose(res.cv_mean, cvm, rtol=1e-6)
    np.testing.assert_allclose(res.cv_se, cvsd, rtol=1e-5)
    assert (res.index_min, res.index_1se) == (i_min, i_1se)
    assert i_1se < i_min  # the two rules differ here
    for rule, idx in (("min", i_min), ("1se", i_1se)):
        est = GlmnetLogisticCV(foldid=foldid, rule=rule, fold_path=fold_path).fit(X, y)  # type: ignore[arg-type]
        assert est.lambda_index_ == idx and est.lambda_ == res.path.lambdas[idx]
        assert est.lambda_min_ == res.path.lambdas[i_min]
        assert est.lambda_1se_ == res.path.lambdas[i_1se]
        np.testing.assert_array_equal(est.coef_[0], res.path.coefs[idx])
        assert est.intercept_[0] == res.path.intercepts[idx]
        np.testing.assert_array_equal(est.dev_ratio_, res.path.dev_ratio)
        np.testing.assert_array_equal(est.foldid_, foldid)
        np.testing.assert_array_equal(est.path_.coefs, res.path.coefs)
        np.testing.assert_array_equal(est.cv_se_, res.cv_se)


def test_cv_of_a_one_lambda_path_and_reference_cut() -> None:
    X, y = _data(45, 10, 39)
    foldid = make_foldid(45, 3, np.random.default_rng(0))
    one = cv_logistic_lasso(X, y, foldid, nlambda=1)
    assert one.path.lambdas.shape == (1,) and one.index_min == one.index_1se == 0
    # intercept-only everywhere: each row's deviance is that of its training folds' mean
    expected = 0.0
    for f in (1, 2, 3):
        test = foldid == f
        pbar = y[~test].mean()
        expected -= 2.0 * np.sum(y[test] * np.log(pbar) + (1 - y[test]) * np.log(1 - pbar))
    assert one.cv_mean[0] == pytest.approx(expected / 45, rel=1e-10)
    # two lambdas: the fold paths are interpolated between their two fits
    two = cv_logistic_lasso(X, y, foldid, nlambda=2)
    np.testing.assert_allclose(two.cv_mean, _cv_by_hand(X, y, foldid, "own", 2)[1], rtol=1e-8)
    # the reference solver cut at the choice: the head of its whole path
    whole = cv_logistic_lasso(X, y, foldid, solver="reference")
    cut = cv_logistic_lasso(X, y, foldid, solver="reference", full_path=False)
    L = cut.path.lambdas.shape[0]
    assert L == whole.index_min + 1 < whole.path.lambdas.shape[0]
    np.testing.assert_array_equal(cut.path.coefs, whole.path.coefs[:L])
    np.testing.assert_array_equal(cut.path.dev_ratio, whole.path.dev_ratio[:L])
    np.testing.assert_array_equal(cut.cv_mean, whole.cv_mean[:L])
    assert cut.index_min == whole.index_min


def test_cv_options_solver_and_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    X, y = _data(60, 20, 31)
    foldid = make_foldid(60, 3, np.random.default_rng(0))
    # lambda_min_ratio reaches the sequence the folds are scored at when the path is cut
    whole = cv_logistic_lasso(X, y, foldid, nlambda=7, lambda_min_ratio=0.2)
    cut = cv_logistic_lasso(X, y, foldid, nlambda=7, lambda_min_ratio=0.2, full_path=False)
    L = cut.path.lambdas.shape[0]
    assert L == whole.index_min + 1 == 6
    np.testing.assert_array_equal(cut.path.lambdas, whole.path.lambdas[:L])
    np.testing.assert_array_equal(cut.cv_mean, whole.cv_mean[:L])
    # the reference solver ignores a compiled layout passed to it
    COUNTS[:] = 0
    ref = cv_logistic_lasso(X, y, foldid, solver="reference", design=Design.of(X))
    assert not COUNTS.any()
    plain = cv_logistic_lasso(X, y, foldid, solver="reference")
    np.testing.assert_array_equal(ref.cv_mean, plain.cv_mean)
    # a compiled path that fails is refitted by the reference solver, fold paths included
    from histobench.tasks.estimators import _glmnet_kernels as kern

    def fail(*args: object, **kwargs: object) -> tuple[int, int]:
        return 0, kern.FAIL

    monkeypatch.setattr(kern, "solve_path", fail)
    for fold_path in ("own", "full"):
        got = cv_logistic_lasso(X, y, foldid, fold_path=fold_path)  # type: ignore[arg-type]
        expected = cv_logistic_lasso(X, y, foldid, fold_path=fold_path, solver="reference")  # type: ignore[arg-type]
        np.testing.assert_array_equal(got.cv_mean, expected.cv_mean)


def test_make_foldid_is_balanced_and_seeded() -> None:
    ids = make_foldid(23, 4, np.random.default_rng(5))
    np.testing.assert_array_equal(np.bincount(ids), [0, 6, 6, 6, 5])
    expected = np.random.default_rng(5).permutation(np.arange(23) % 4) + 1
    np.testing.assert_array_equal(ids, expected)
    est = GlmnetLogisticCV(n_folds=4, random_state=5, nlambda=10).fit(*_data(23, 3, 40))
    np.testing.assert_array_equal(est.foldid_, expected)


def test_estimator_options_reach_the_fit() -> None:
    X, y = _data(60, 20, 31)
    lmax = _lambda_max(X, y)
    est = GlmnetLogisticCV(n_folds=3, random_state=0, nlambda=7, lambda_min_ratio=0.2).fit(X, y)
    np.testing.assert_allclose(est.lambdas_, lmax * 0.2 ** (np.arange(7) / 6.0), rtol=1e-12)
    assert est.converged_
    # a loose tolerance (residual 0.1 lambda) is reported by the certificate
    loose = GlmnetLogisticCV(n_folds=3, random_state=0, nlambda=7, thresh=1e-4).fit(X, y)
    assert loose.kkt_residual_ > 1e-6 and not loose.converged_
    # the reference solver does no compiled work
    COUNTS[:] = 0
    GlmnetLogisticCV(n_folds=3, random_state=0, nlambda=7, solver="reference").fit(X, y)
    assert not COUNTS.any()
    GlmnetLogisticCV(n_folds=3, random_state=0, nlambda=7).fit(X, y)
    assert COUNTS[2] > 0


def test_fitted_estimator_predicts_its_classes() -> None:
    X, y = _data(40, 6, 41)
    labels = np.where(y > 0, "mut", "wt")  # classes_ sorted: "mut" < "wt", so P(wt) is column 1
    est = GlmnetLogisticCV(n_folds=3, random_state=0, nlambda=20).fit(X, labels)
    np.testing.assert_array_equal(est.classes_, ["mut", "wt"])
    eta = X @ est.coef_[0] + est.intercept_[0]
    proba = est.predict_proba(X)
    np.testing.assert_allclose(proba[:, 1], 1 / (1 + np.exp(-eta)), rtol=1e-12)
    np.testing.assert_allclose(proba.sum(1), 1.0)
    np.testing.assert_array_equal(est.predict(X), np.where(eta > 0, "wt", "mut"))
    est.coef_[:] = 0.0  # a decision of exactly 0 is the first class, as in scikit-learn
    est.intercept_[:] = 0.0
    np.testing.assert_array_equal(est.predict(X[:2]), ["mut", "mut"])
    assert est.coef_.shape == (1, 6) and est.intercept_.shape == (1,)


def _any(value: object) -> Any:
    """A value of the wrong type, passed on purpose."""
    return value


def _exact(message: str) -> str:
    return "^" + re.escape(message) + "$"


def test_input_errors_name_the_problem() -> None:
    X, y = _data(30, 4, 42)
    a = np.arange(30) % 3
    binary = "y: Only binary classification is supported. The type of the target is "
    cases: list[tuple[type[Exception], str, Any]] = [
        (DataError, "y: contains NaN labels",
         lambda: lasso_cross_val_predict(X, np.where(a == 1, np.nan, y), a)),
        (DataError, binary + "multiclass; need exactly 2 classes, got 3 (0, 1, 2)",
         lambda: GlmnetLogisticCV().fit(X, a)),
        (DataError, binary + "one class; need exactly 2 classes, got 1 (0.0)",
         lambda: lasso_cross_val_predict(X, np.zeros(30), a)),
        (ConfigError, "rule: expected 'min' or '1se', got 'max'",
         lambda: GlmnetLogisticCV(rule=_any("max")).fit(X, y)),
        (ConfigError, "fold_path: expected 'own' or 'full', got 'half'",
         lambda: GlmnetLogisticCV(fold_path=_any("half")).fit(X, y)),
        (ConfigError, "foldid: 29 ids for 30 rows",
         lambda: GlmnetLogisticCV(foldid=np.arange(29) % 3).fit(X, y)),
        (ConfigError, "n_folds: expected at least 3, got 2",
         lambda: GlmnetLogisticCV(n_folds=2).fit(X, y)),
        (DataError, "X: n_samples=30 is fewer than n_folds=31",
         lambda: GlmnetLogisticCV(n_folds=31).fit(X, y)),
        (ConfigError, "foldid: cv.glmnet needs at least 3 folds, got 2",
         lambda: cv_logistic_lasso(X, y, np.arange(30) % 2)),
        (ConfigError, "solver: expected 'compiled' or 'reference', got 'fast'",
         lambda: cv_logistic_lasso(X, y, a, solver=_any("fast"))),
        (ConfigError, "solver: expected 'compiled' or 'reference', got 'fast'",
         lambda: logistic_lasso_path(X, y, solver=_any("fast"))),
        (DataError, "y: 29 labels for 30 rows of X", lambda: logistic_lasso_path(X, y[:29])),
        (DataError, "y: 29 labels for 30 rows of X",
         lambda: lasso_cross_val_predict(X, y[:29], a)),
        (DataError, "X: expected a non-empty 2-D array, got shape (30,)",
         lambda: logistic_lasso_path(X[:, 0], y)),
        (DataError, "X: expected a non-empty 2-D array, got shape (30, 0)",
         lambda: logistic_lasso_path(X[:, :0], y)),
        (DataError, "X: expected a non-empty 2-D array, got shape (0, 4)",
         lambda: lasso_cross_val_predict(X[:0], y[:0], a[:0])),
        (DataError, "X: contains NaN or infinite values",
         lambda: logistic_lasso_path(np.where(X > 2, np.inf, X), y)),
        (DataError, "X: contains NaN or infinite values",
         lambda: lasso_cross_val_predict(np.where(X > 2, np.nan, X), y, a)),
        (DataError, "y: only one class in the training rows, cannot fit a logistic model",
         lambda: logistic_lasso_path(X, np.ones(30))),
        (DataError, "Y: expected (30, targets) labels, got (30,)",
         lambda: lasso_cross_val_predict_many(X, y, a)),
        (DataError, "Y: expected (30, targets) labels, got (29, 1)",
         lambda: lasso_cross_val_predict_many(X, y[:29, None], a)),
        (DataError, "Y: labels must be 0 or 1",
         lambda: lasso_cross_val_predict_many(X, np.column_stack([y, y + 0.5]), a)),
        (ConfigError, "unknown option(s) of cv_logistic_lasso: n_folds, rule2",
         lambda: lasso_cross_val_predict_many(X, y[:, None], a, rule2=1, n_folds=3)),
    ]  # fmt: skip
    for kind, message, call in cases:
        with pytest.raises(kind, match=_exact(message)):
            call()
    # one row is not "empty": it fails on its single class instead
    with pytest.raises(
        DataError, match=_exact(binary + "one class; need exactly 2 classes, got 1 (1.0)")
    ):
        lasso_cross_val_predict(X[:1], np.ones(1), a[:1])
    # one column, and integer features, are data
    assert logistic_lasso_path(X[:, :1], y, nlambda=3).coefs.shape == (3, 1)
    Xi = np.round(3 * X).astype(np.int64)
    np.testing.assert_array_equal(
        logistic_lasso_path(Xi, y, nlambda=5).coefs,
        logistic_lasso_path(Xi.astype(float), y, nlambda=5).coefs,
    )
    GlmnetLogisticCV(n_folds=3, nlambda=5).fit(X, y)  # 3 folds are enough
    GlmnetLogisticCV(n_folds=30, nlambda=3).fit(X, y)  # leave-one-out is allowed
    # one positive in 30 is a valid training set (ybar = 1/30 > pmin)
    one = np.zeros(30)
    one[4] = 1.0
    assert logistic_lasso_path(X, one, nlambda=3).lambdas.shape[0] == 3


def test_an_inner_fold_with_one_class_is_named() -> None:
    X, _ = _data(30, 4, 43)
    foldid = np.arange(30) % 3 + 1
    y = (foldid == 2).astype(float)  # every positive in fold 2: its training rows are negative
    message = "foldid: inner fold 2 leaves one class in its training rows"
    with pytest.raises(DataError, match=_exact(message)):
        cv_logistic_lasso(X, y, foldid)


def test_engine_rule_and_first_error() -> None:
    """The outer-CV engine applies the rule (1se here) and reports the first failing
    (repeat, fold) of a target; a failing target does not stop the targets after it."""
    X, y = _data(36, 12, 44)
    a = np.stack([np.arange(36) % 3, (np.arange(36) // 12) % 3])
    bad = np.zeros(36)
    bad[24:30] = 1.0  # all in repeat 1's fold 2: one class in its training rows
    inner = np.zeros(36)
    inner[[24, 25]] = 1.0  # two positives: one class in an inner fold's training rows
    Y = np.column_stack([bad, inner, y])
    out, errors = lasso_cross_val_predict_many(X, Y, a, inner_folds=3, rule="1se", seed=2)
    assert errors == [
        "y: repeat 1 fold 2 has one class in its training rows",
        "foldid: inner fold 1 leaves one class in its training rows",
        None,
    ]
    assert np.isnan(out[:2]).all()  # the whole target, not only the failing fold
    out = out[1:]  # y is now target 1
    differ = 0
    for r in range(2):
        for k in range(3):
            test, train = a[r] == k, a[r] != k
            foldid = make_foldid(int(train.sum()), 3, np.random.default_rng([2, r, k]))
            est = GlmnetLogisticCV(foldid=foldid, rule="1se").fit(X[train], y[train])
            np.testing.assert_allclose(out[1, r, test], est.predict_proba(X[test])[:, 1], atol=1e-8)
            differ += est.lambda_1se_ != est.lambda_min_
    assert differ >= 3  # the rule matters in these folds
    one = lasso_cross_val_predict(X, y, a[0], inner_folds=3, rule="1se", seed=2)  # 1-D plan
    np.testing.assert_array_equal(one, out[1, :1])
    # the defaults (10 inner folds, rule "min", seed 0); options reach cv_logistic_lasso
    X, y = _data(36, 12, 46)  # data on which the seed and nlambda change the predictions
    default = lasso_cross_val_predict(X, y, a[:1], nlambda=20)
    many, _ = lasso_cross_val_predict_many(X, y[:, None], a[:1], nlambda=20)
    np.testing.assert_array_equal(many[0], default)
    seed1, _ = lasso_cross_val_predict_many(X, y[:, None], a[:1], nlambda=20, seed=1)
    assert np.max(np.abs(seed1 - many)) > 0.01
    for k in range(3):
        test, train = a[0] == k, a[0] != k
        foldid = make_foldid(int(train.sum()), 10, np.random.default_rng([0, 0, k]))
        est = GlmnetLogisticCV(foldid=foldid, nlambda=20).fit(X[train], y[train])
        np.testing.assert_allclose(default[0, test], est.predict_proba(X[test])[:, 1], atol=1e-8)


@pytest.mark.parametrize("solver", ["compiled", "reference"])
def test_engine_shares_one_layout_per_outer_fold(
    solver: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Targets share each outer fold's data layout (one ``Design`` per outer fold, none for
    the reference solver); the inner folds are solved to ``FOLD_THRESH``, never tighter than
    the ``thresh`` asked for, and the full-data path stops at the choice."""
    X, y = _data(30, 8, 46)
    Y = np.column_stack([y, 1.0 - y, y])
    a = np.arange(30) % 3
    made: list[int] = []
    calls: list[dict[str, Any]] = []
    real_of, real_cv = glmnet.Design.of, glmnet.cv_logistic_lasso

    def of(X: np.ndarray) -> Design:
        made.append(X.shape[0])
        return real_of(X)

    def cv(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return real_cv(*args, **kwargs)

    monkeypatch.setattr(glmnet.Design, "of", of)
    monkeypatch.setattr(glmnet, "cv_logistic_lasso", cv)
    rounds = [(None, 1e-8, True), (1e-6, 1e-6, True), (1e-10, 1e-8, True)]
    if solver == "compiled":
        rounds.append((None, 1e-8, False))  # the default solver
    for thresh, fold_thresh, pass_solver in rounds:
        made.clear()
        calls.clear()
        options: dict[str, Any] = {"nlambda": 10}
        if pass_solver:
            options["solver"] = solver
        if thresh is not None:
            options["thresh"] = thresh
        _, errors = lasso_cross_val_predict_many(X, Y, a, inner_folds=3, **options)
        assert errors == [None, None, None]
        assert made == ([20, 20, 20] if solver == "compiled" else [])
        assert len(calls) == 9
        for kw in calls:
            assert kw["fold_thresh"] == fold_thresh and kw["full_path"] is False
            assert kw.get("solver", "compiled") == solver and kw["nlambda"] == 10
            assert (kw["design"] is None) == (solver == "reference")


# ---- fold plumbing and input checks -----------------------------------------------------------


def test_check_assignments_and_iter_folds() -> None:
    a = _folds.check_assignments(np.array([0, 2, 2, 0], dtype=np.int32), 4)
    assert a.shape == (1, 4) and a.dtype == np.int64
    np.testing.assert_array_equal(a, [[0, 2, 2, 0]])
    with pytest.raises(
        DataError, match=_exact("assignments: expected shape (repeats, 4), got (1, 5)")
    ):
        _folds.check_assignments(np.zeros((1, 5), dtype=int), 4)
    with pytest.raises(DataError, match=r"got \(2, 2, 2\)"):
        _folds.check_assignments(np.zeros((2, 2, 2), dtype=int), 2)
    with pytest.raises(
        DataError, match=_exact("assignments: expected non-negative integer fold ids")
    ):
        _folds.check_assignments(np.array([0.0, 1.0]), 2)
    with pytest.raises(DataError, match="non-negative integer fold ids"):
        _folds.check_assignments(np.array([0, -1]), 2)
    _folds.check_assignments(np.array([0, 0]), 2)  # fold 0 alone is valid input
    plan = np.array([[1, 0, 1, 3], [2, 2, 0, 0]])
    got = [(r, k, tr.tolist(), te.tolist()) for r, k, tr, te in _folds.iter_folds(plan)]
    assert got == [
        (0, 0, [0, 2, 3], [1]),
        (0, 1, [1, 3], [0, 2]),
        (0, 3, [0, 1, 2], [3]),
        (1, 0, [0, 1], [2, 3]),
        (1, 2, [2, 3], [0, 1]),
    ]
    assert all(type(k) is int for _, k, _, _ in _folds.iter_folds(plan))


def test_default_n_jobs() -> None:
    cpus = os.cpu_count() or 1
    assert _folds.default_n_jobs(None) == 1
    assert _folds.default_n_jobs(0) == 1
    assert _folds.default_n_jobs(1) == 1
    assert _folds.default_n_jobs(3) == 3
    assert _folds.default_n_jobs(-1) == cpus
    assert _folds.default_n_jobs(-2) == max(1, cpus - 1)
    assert _folds.default_n_jobs(-1000) == 1


def test_validation_errors_are_one_line_value_errors() -> None:
    class Est(BaseEstimator):
        pass

    est = Est()
    X = np.arange(12.0).reshape(6, 2)
    Xc, yc = _validation.fit_data(est, X.astype(int), np.array(list("ababab")), classifier=True)
    assert Xc.dtype == np.float64 and est.n_features_in_ == 2  # type: ignore[attr-defined]
    np.testing.assert_array_equal(yc, list("ababab"))
    with pytest.raises(_validation.EstimatorInputError, match="Unknown label type") as info:
        _validation.fit_data(Est(), X, np.linspace(0, 1, 6), classifier=True)
    assert "\n" not in str(info.value) and "  " not in str(info.value)
    assert isinstance(info.value, ValueError) and isinstance(info.value, DataError)
    Xr, yr = _validation.fit_data(Est(), X, np.linspace(0, 1, 6), classifier=False)
    np.testing.assert_allclose(yr, np.linspace(0, 1, 6))
    with pytest.raises(_validation.EstimatorInputError):
        _validation.fit_data(Est(), X, np.array(list("ababab"), dtype=object), classifier=False)
    with pytest.raises(NotFittedError):
        GlmnetLogisticCV().predict(X)
    fitted = GlmnetLogisticCV(n_folds=3, nlambda=5).fit(*_data(30, 3, 45))
    with pytest.raises(DataError, match="X has 4 features, but GlmnetLogisticCV is expecting 3"):
        fitted.predict(np.zeros((4, 4)))
    assert _validation.predict_data(fitted, X[:, [0, 1, 0]].astype(int)).dtype == np.float64


# ---- found by the second mutation run (the functions not run before, _glmnet_reference) ------


def test_a_column_whose_spread_underflows_is_dropped(monkeypatch: pytest.MonkeyPatch) -> None:
    """A column whose values differ (glmnet's ju = 1) but whose sd underflows to exactly 0
    (1e-170 steps: their squares are below the smallest double) is dropped like a constant one
    by both solvers and both lambda sequences, the compiled solver without the fallback:
    keeping it divides by its sd of 0."""
    X, y = _data(40, 6, 3)
    tiny = np.where(np.arange(40) % 3 == 0, 1e-170, 0.0)
    X2 = np.column_stack([X, tiny])
    rows = np.arange(40)
    d2 = Design.of(X2)
    xm, xs, varies = d2.column_stats(rows)
    assert varies[6] and xs[6] == 0.0 and standardize(X2)[2][6] == 0.0
    seq = lambda_sequence(X, y)
    np.testing.assert_array_equal(lambda_sequence(X2, y), seq)
    np.testing.assert_allclose(default_lambdas(X2, d2, rows, y, 100, None), seq, rtol=1e-12)
    ref = logistic_lasso_path(X, y, solver="reference")
    ref2 = logistic_lasso_path(X2, y, solver="reference")
    np.testing.assert_array_equal(ref2.coefs[:, :6], ref.coefs)
    assert not ref2.coefs[:, 6].any()
    fast = logistic_lasso_path(X, y)

    monkeypatch.setattr(_glmnet_path, "reference_path", _refuse_reference)
    fast2 = logistic_lasso_path(X2, y)
    np.testing.assert_array_equal(fast2.lambdas, fast.lambdas)
    np.testing.assert_allclose(fast2.coefs[:, :6], fast.coefs, rtol=1e-12, atol=1e-14)
    assert not fast2.coefs[:, 6].any()


def test_the_fold_tolerance_reaches_the_fold_paths_only() -> None:
    """``fold_thresh`` sets the fold paths' tolerance and ``thresh`` the full-data path's: the
    cross-validated deviance is that of ``thresh=fold_thresh``, the path that of ``thresh``."""
    X, y = _data(50, 15, 61)
    foldid = make_foldid(50, 4, np.random.default_rng(1))
    both = cv_logistic_lasso(X, y, foldid, thresh=1e-12, fold_thresh=1e-4)
    loose = cv_logistic_lasso(X, y, foldid, thresh=1e-4)
    tight = cv_logistic_lasso(X, y, foldid, thresh=1e-12)
    assert np.max(np.abs(loose.cv_mean - tight.cv_mean)) > 1e-3  # the tolerance matters here
    np.testing.assert_array_equal(both.cv_mean, loose.cv_mean)
    np.testing.assert_array_equal(both.path.coefs, tight.path.coefs)


def test_full_sequence_fold_paths_use_the_compiled_solver(monkeypatch: pytest.MonkeyPatch) -> None:
    """``fold_path="full"`` (glmnet < 4): the fold paths at the full-data sequence are fitted by
    the compiled solver on the shared layout, not handed to the reference solver."""
    X, y = _data(50, 15, 61)
    foldid = make_foldid(50, 4, np.random.default_rng(1))
    ref = cv_logistic_lasso(X, y, foldid, fold_path="full", solver="reference")

    monkeypatch.setattr(_glmnet_path, "reference_path", _refuse_reference)
    got = cv_logistic_lasso(X, y, foldid, fold_path="full")
    np.testing.assert_allclose(got.cv_mean, ref.cv_mean, rtol=1e-5)


def test_cross_validation_uses_the_path_newton_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every reference fit of a cross-validation (full-data and fold paths) runs under
    ``logistic_lasso_path``'s Newton cap, so its full-data path is that function's path."""
    seen: list[int] = []
    real = _glmnet_path.reference_path

    def spy(*args: Any) -> LogisticPath:
        seen.append(args[-1])
        return real(*args)

    monkeypatch.setattr(_glmnet_path, "reference_path", spy)
    X, y = _data(40, 8, 62)
    logistic_lasso_path(X, y, solver="reference", nlambda=10)
    cv_logistic_lasso(X, y, make_foldid(40, 3, np.random.default_rng(1)), solver="reference",
                      nlambda=10)  # fmt: skip
    assert len(seen) == 5 and len(set(seen)) == 1


def _lasso_violation(Xt: np.ndarray, yt: np.ndarray, lam: float, b: np.ndarray) -> float:
    """Largest KKT violation of ``min 0.5 ||yt - Xt b||^2 + lam ||b||_1``, relative to lam."""
    g = Xt.T @ (yt - Xt @ b)
    viol = np.where(b != 0, np.abs(g - lam * np.sign(b)), np.maximum(np.abs(g) - lam, 0.0))
    return float(np.max(viol)) / lam


def test_feature_sign_search_solves_the_lasso_exactly() -> None:
    """The reference solver's inner solver (feature-sign search) is exact to rounding: from a
    cold start, and warm-started along a decreasing sequence and back up (coefficients change
    sign and leave the active set), it reports convergence and meets the KKT conditions."""
    rng = np.random.default_rng(5)
    Xt = rng.normal(size=(30, 8))
    Xt[:, 1] += 0.8 * Xt[:, 0]  # correlated columns: signs flip along the path
    yt = Xt @ np.array([1.0, -1.5, 0.0, 0.5, 0.0, 0.0, -0.3, 0.0]) + rng.normal(size=30)
    top = float(np.max(np.abs(Xt.T @ yt)))
    for frac in (0.5, 0.1, 0.01):
        b = np.zeros(8)
        assert _glmnet_reference._lasso_ls(Xt, yt, frac * top, b)
        assert _lasso_violation(Xt, yt, frac * top, b) <= 1e-12
        # one iteration adds the violators, it cannot also certify them: not converged
        assert not _glmnet_reference._lasso_ls(Xt, yt, frac * top, np.zeros(8), max_iter=1)
    b = np.zeros(8)
    signs = set()
    for frac in [*np.geomspace(0.9, 0.001, 25), *np.geomspace(0.002, 0.9, 10)]:
        assert _glmnet_reference._lasso_ls(Xt, yt, frac * top, b, max_iter=10)
        assert _lasso_violation(Xt, yt, frac * top, b) <= 1e-12
        signs.add(tuple(np.sign(b)))
    assert len(signs) >= 6  # the active set changes along the way
    # from starts with wrong signs (the walk back to a zero crossing): the same solution
    lam = 0.05 * top
    exact = np.zeros(8)
    assert _glmnet_reference._lasso_ls(Xt, yt, lam, exact)
    for _ in range(5):
        b = rng.normal(size=8) * 2.0
        assert _glmnet_reference._lasso_ls(Xt, yt, lam, b, max_iter=30)
        np.testing.assert_allclose(b, exact, rtol=1e-9, atol=1e-12)
    # its tolerance scales with the data: the same problem in other units, the same solution
    lam = 0.1 * top
    b = np.zeros(8)
    assert _glmnet_reference._lasso_ls(Xt, yt, lam, b)
    for scale in (1e-6, 1e6):
        bs = np.zeros(8)
        assert _glmnet_reference._lasso_ls(Xt, scale * yt, scale * lam, bs)
        np.testing.assert_allclose(bs / scale, b, rtol=1e-9)


def test_coordinate_descent_fallbacks_solve_the_lasso(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sub-problem fallback: scikit-learn's coordinate descent, and the numpy one used when
    scikit-learn's private solver is not importable, reach the lasso solution that feature-sign
    search finds exactly (warm-started or not; tolerance 1e-8 of ``||yt||^2``)."""
    rng = np.random.default_rng(6)
    Xt = np.asfortranarray(rng.normal(size=(40, 9)))
    yt = Xt @ np.array([1.0, -2.0, 0.0, 0.7, 0.0, 0.0, 0.0, -0.4, 0.0]) + rng.normal(size=40)
    lam = 0.2 * float(np.max(np.abs(Xt.T @ yt)))
    exact = np.zeros(9)
    assert _glmnet_reference._lasso_ls(Xt, yt, lam, exact)
    assert np.count_nonzero(exact) >= 2
    for sk in (True, False):
        with monkeypatch.context() as m:
            if not sk:
                m.setattr(_glmnet_reference, "_sk_cd", None)
            for start in (np.zeros(9), exact + 0.3):
                w = start.copy()
                _glmnet_reference._weighted_lasso(w, lam, Xt, yt, 1e-10, 10000)
                np.testing.assert_allclose(w, exact, atol=1e-6)
                assert _lasso_violation(Xt, yt, lam, w) <= 1e-4


def test_reference_path_needs_no_coordinate_descent(monkeypatch: pytest.MonkeyPatch) -> None:
    """On well-posed data every Newton step's sub-problem is solved by feature-sign search
    within a few iterations (at most 5 here, warm-started): the coordinate-descent fallback
    is never needed, and the path is the same. The Newton iterations converge by glmnet's
    criterion: 3-5 sub-problems per lambda here, at most 10 allowed (a criterion that is never
    met runs the cap of 100 Newton steps at every lambda)."""
    real = _glmnet_reference._lasso_ls
    calls = [0]
    max_iter = [500]

    def counted(Xt: np.ndarray, yt: np.ndarray, lam: float, b: np.ndarray) -> bool:
        calls[0] += 1
        if calls[0] > 10 * 100:
            raise AssertionError("more than 10 Newton steps per lambda")
        return real(Xt, yt, lam, b, max_iter=max_iter[0])

    monkeypatch.setattr(_glmnet_reference, "_lasso_ls", counted)
    for X, y in (_data(70, 25, 11), _data(50, 150, 12)):
        calls[0], max_iter[0] = 0, 500
        expected = logistic_lasso_path(X, y, solver="reference")
        assert calls[0] <= 5 * expected.lambdas.shape[0]
        calls[0], max_iter[0] = 0, 10
        with monkeypatch.context() as m:
            m.setattr(_glmnet_reference, "_weighted_lasso", _refuse_coordinate_descent)
            got = logistic_lasso_path(X, y, solver="reference")
        np.testing.assert_array_equal(got.coefs, expected.coefs)


def _refuse_reference(*args: object, **kwargs: object) -> None:
    raise AssertionError("the compiled solver fell back to the reference solver")


def _refuse_coordinate_descent(*args: object, **kwargs: object) -> None:
    raise AssertionError("feature-sign search failed: coordinate descent was needed")


def test_reference_path_with_duplicated_columns_meets_the_kkt_conditions() -> None:
    """Exact duplicates make the Gram of feature-sign search singular; those sub-problems go to
    coordinate descent (tolerance 1e-8), and the path still meets the KKT conditions (5e-6
    lambda here; within 1e-4) with the intercept's gradient at zero."""
    X, y = _data(80, 30, 13)
    X[:, 5] = X[:, 0]
    X[:, 6] = 2.0 * X[:, 1] - 1.0
    path = logistic_lasso_path(X, y, solver="reference")
    xs = X.std(0)
    Z = (X - X.mean(0)) / xs
    for k in range(1, path.lambdas.shape[0]):
        p = 1 / (1 + np.exp(-(path.intercepts[k] + X @ path.coefs[k])))
        grad = (y - p) @ Z / len(y)
        b, lam = path.coefs[k] * xs, path.lambdas[k]
        viol = np.where(b != 0, np.abs(grad - lam * np.sign(b)), np.abs(grad) - lam)
        assert np.max(viol) <= 1e-4 * lam, k
        assert abs(np.mean(y - p)) <= 1e-6 * lam, k


@pytest.mark.parametrize("solver", ["compiled", "reference"])
def test_user_lambdas_above_lambda_max_give_the_intercept_only_model(solver: str) -> None:
    X, y = _data(40, 10, 63)
    lmax = _lambda_max(X, y)
    path = logistic_lasso_path(X, y, lambdas=[2.0 * lmax, 1.5 * lmax, 0.5 * lmax], solver=solver)  # type: ignore[arg-type]
    ybar = y.mean()
    np.testing.assert_allclose(path.intercepts[:2], np.log(ybar / (1 - ybar)), rtol=1e-12)
    assert not path.coefs[:2].any() and path.coefs[2].any()
    np.testing.assert_allclose(path.dev_ratio[:2], 0.0, atol=1e-12)
