"""GlmnetLogisticCV against R glmnet / cv.glmnet, plus the outer-CV helper."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from histobench.plugins.errors import ConfigError, DataError
from histobench.tasks.estimators import glmnet
from histobench.tasks.estimators.glmnet import (
    KKT_TOL,
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
from tests.tasks.rparity import r_has_package, read_csv, requires_r, run_r, write_csv

requires_glmnet = pytest.mark.skipif(
    not r_has_package("glmnet"), reason="R package glmnet is not installed (R parity test)"
)


def _data(n: int, p: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    return planted_logistic(n, p, seed, label_dtype=int)


R_SCRIPT = """
suppressMessages(library(glmnet))
x <- as.matrix(read.csv("x.csv", header=FALSE))
y <- read.csv("y.csv", header=FALSE)[, 1]
f <- read.csv("foldid.csv", header=FALSE)[, 1]
fit <- glmnet(x, y, family="binomial")
write.table(fit$lambda, "lambda.csv", row.names=FALSE, col.names=FALSE)
for (th in c(1e-7, 1e-10)) {  # glmnet's default convergence threshold, then a tight one
  cv <- cv.glmnet(x, y, family="binomial", foldid=f, type.measure="deviance", thresh=th)
  write.table(cbind(cv$lambda.min, cv$lambda.1se), sprintf("chosen_%g.csv", th), sep=",",
              row.names=FALSE, col.names=FALSE)
  p <- cbind(predict(cv, x, s="lambda.min", type="response"),
             predict(cv, x, s="lambda.1se", type="response"))
  write.table(p, sprintf("pred_%g.csv", th), sep=",", row.names=FALSE, col.names=FALSE)
}
"""


@requires_r
@requires_glmnet
@pytest.mark.r
@pytest.mark.parametrize(("n", "p", "seed"), [(80, 30, 1), (60, 120, 2)])
def test_matches_glmnet_and_cv_glmnet(tmp_path: Path, n: int, p: int, seed: int) -> None:
    X, y = _data(n, p, seed)
    foldid = np.random.default_rng(seed + 100).permutation(np.arange(n) % 10) + 1
    write_csv(tmp_path / "x.csv", X)
    write_csv(tmp_path / "y.csv", y[:, None])
    write_csv(tmp_path / "foldid.csv", foldid[:, None])
    run_r(R_SCRIPT, tmp_path)
    r_lambda = read_csv(tmp_path / "lambda.csv")[:, 0]
    r_chosen = read_csv(tmp_path / "chosen_1e-07.csv")[0]
    r_pred_default = read_csv(tmp_path / "pred_1e-07.csv")
    r_pred = read_csv(tmp_path / "pred_1e-10.csv")
    np.testing.assert_allclose(read_csv(tmp_path / "chosen_1e-10.csv")[0], r_chosen, rtol=1e-6)

    path = logistic_lasso_path(X, y)
    assert path.lambdas.shape == r_lambda.shape  # same truncation of the path
    np.testing.assert_allclose(path.lambdas, r_lambda, rtol=1e-6)
    np.testing.assert_allclose(lambda_sequence(X, y), r_lambda, rtol=1e-6)

    for col, rule in enumerate(("min", "1se")):
        est = GlmnetLogisticCV(foldid=foldid, rule=rule).fit(X, y)
        assert est.lambda_ == pytest.approx(r_chosen[col], rel=1e-6)
        prob = est.predict_proba(X)[:, 1]
        # We solve to (near) machine precision; glmnet converged tightly agrees within 1e-4 ...
        np.testing.assert_allclose(prob, r_pred[:, col], atol=1e-4)
        # ... and glmnet's default thresh=1e-7 itself stops up to a few 1e-4 from the optimum.
        np.testing.assert_allclose(prob, r_pred_default[:, col], atol=1e-3)
    # lambda.min and lambda.1se differ here, so the rule really is applied.
    assert r_chosen[0] < r_chosen[1]


def test_coefficients_on_original_scale_and_sparse() -> None:
    X, y = _data(120, 40, 3)
    est = GlmnetLogisticCV(random_state=0).fit(X, y)
    eta = X @ est.coef_[0] + est.intercept_[0]
    np.testing.assert_allclose(est.decision_function(X), eta)
    assert 0 < np.count_nonzero(est.coef_) < 40
    # The planted features are the strongest ones on the standardised scale.
    strength = np.abs(est.coef_[0] * X.std(0))
    assert set(np.argsort(strength)[-3:]) == {0, 1, 2}
    assert est.cv_mean_.shape == est.lambdas_.shape == est.cv_se_.shape
    assert est.lambda_ == est.lambdas_[np.argmin(est.cv_mean_)]


def test_kkt_conditions_hold_along_the_path() -> None:
    X, y = _data(70, 50, 4)
    path = logistic_lasso_path(X, y)
    xm, xs = X.mean(0), X.std(0)
    Z = (X - xm) / xs
    for k in range(0, path.lambdas.shape[0], 7):
        p = 1 / (1 + np.exp(-(path.intercepts[k] + X @ path.coefs[k])))
        grad = (y - p) @ Z / len(y)
        b = path.coefs[k] * xs
        lam = path.lambdas[k]
        assert abs(np.sum(y - p)) < 1e-8  # unpenalised intercept
        assert np.all(np.abs(grad[b == 0]) <= lam * (1 + 1e-6))
        np.testing.assert_allclose(grad[b != 0], lam * np.sign(b[b != 0]), rtol=1e-5, atol=1e-9)


def test_constant_column_gets_zero_coefficient() -> None:
    X, y = _data(60, 10, 5)
    X[:, 3] = 7.0
    est = GlmnetLogisticCV(random_state=1).fit(X, y)
    assert est.coef_[0, 3] == 0.0
    assert np.isfinite(est.predict_proba(X)).all()


def test_single_class_is_a_data_error() -> None:
    X, _ = _data(30, 5, 6)
    with pytest.raises(DataError, match="2 classes") as info:
        GlmnetLogisticCV().fit(X, np.ones(30))
    assert "\n" not in str(info.value)


def test_outer_cv_helper_is_seeded_and_leak_free() -> None:
    X, y = _data(45, 60, 7)
    rng = np.random.default_rng(0)
    a = np.stack([rng.permutation(np.arange(45) % 3) for _ in range(2)])
    out = lasso_cross_val_predict(X, y, a, inner_folds=4, seed=3)
    assert out.shape == (2, 45) and np.all((out > 0) & (out < 1))
    par = lasso_cross_val_predict(X, y, a, inner_folds=4, seed=3, n_jobs=2, backend="threading")
    np.testing.assert_array_equal(out, par)
    # Wildly different X for half of fold 0's test rows (repeat 0): the other half's
    # predictions are unchanged, so scaling, lambda path and lambda choice saw training rows only.
    test0 = np.flatnonzero(a[0] == 0)
    altered, kept = test0[::2], test0[1::2]
    X2 = X.copy()
    X2[altered] = 1e4 * rng.normal(size=(len(altered), 60))
    y2 = y.copy()
    y2[test0] = 1 - y2[test0]  # and their labels are never used for their own fold
    out2 = lasso_cross_val_predict(X2, y2, a[:1], inner_folds=4, seed=3)
    np.testing.assert_allclose(out2[0, kept], out[0, kept], rtol=1e-12)


@pytest.mark.parametrize(("n", "p", "seed"), [(70, 25, 11), (50, 150, 12)])
def test_compiled_solver_matches_the_reference(n: int, p: int, seed: int) -> None:
    X, y = _data(n, p, seed)
    fast = logistic_lasso_path(X, y)
    ref = logistic_lasso_path(X, y, solver="reference")
    np.testing.assert_allclose(fast.lambdas, ref.lambdas, rtol=1e-12)
    np.testing.assert_allclose(fast.dev_ratio, ref.dev_ratio, rtol=1e-6, atol=1e-10)
    prob = 1 / (1 + np.exp(-fast.decision_function(X)))
    np.testing.assert_allclose(prob, 1 / (1 + np.exp(-ref.decision_function(X))), atol=1e-6)
    assert np.array_equal(fast.coefs[-1] != 0, np.abs(ref.coefs[-1]) > 1e-9)
    # The cross-validated estimator picks the same lambda and predicts the same.
    foldid = np.random.default_rng(seed).permutation(np.arange(n) % 5) + 1
    a = GlmnetLogisticCV(foldid=foldid).fit(X, y)
    b = GlmnetLogisticCV(foldid=foldid, solver="reference").fit(X, y)
    assert a.lambda_index_ == b.lambda_index_
    # (the tail of the path is near separation, where both are exact only to ~1e-7)
    np.testing.assert_allclose(a.cv_mean_, b.cv_mean_, rtol=1e-5)
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), atol=1e-6)


def test_duplicated_columns_keep_the_kkt_conditions() -> None:
    # Exact duplicates make the active Hessian singular if both join: the solver must keep one.
    X, y = _data(80, 30, 13)
    X[:, 5] = X[:, 0]
    X[:, 6] = 2.0 * X[:, 1] - 1.0
    path = logistic_lasso_path(X, y)
    Z = (X - X.mean(0)) / X.std(0)
    for k in range(1, path.lambdas.shape[0], 5):
        p = 1 / (1 + np.exp(-(path.intercepts[k] + X @ path.coefs[k])))
        grad = (y - p) @ Z / len(y)
        assert np.max(np.abs(grad)) <= path.lambdas[k] * (1 + 1e-6)
        assert abs(np.sum(y - p)) < 1e-8


@pytest.mark.parametrize("how", ["status", "raises"])
def test_compiled_failure_falls_back_to_the_reference(
    monkeypatch: pytest.MonkeyPatch, how: str
) -> None:
    from histobench.tasks.estimators import _glmnet_kernels as kern

    X, y = _data(40, 12, 14)
    expected = logistic_lasso_path(X, y, solver="reference")

    def fail(*args: object, **kwargs: object) -> tuple[int, int]:
        if how == "raises":  # compiled code raises on a division by zero
            raise ZeroDivisionError("division by zero")
        return 0, kern.FAIL

    monkeypatch.setattr(kern, "solve_path", fail)
    got = logistic_lasso_path(X, y)
    np.testing.assert_array_equal(got.coefs, expected.coefs)


def test_cholesky_append_and_delete_track_the_matrix() -> None:
    from histobench.tasks.estimators import _glmnet_kernels as kern

    rng = np.random.default_rng(15)
    A = rng.normal(size=(9, 20))
    H = A @ A.T
    Lf = np.zeros((9, 9))
    Lf[:6, :6] = np.linalg.cholesky(H[:6, :6])
    for m in range(6, 9):  # grow to the full matrix
        assert kern._chol_append(Lf, m, H[m, :m].copy(), float(H[m, m]))
    np.testing.assert_allclose(Lf @ Lf.T, H, rtol=1e-10, atol=1e-10)
    kern._chol_delete(Lf, 9, 3)  # drop row/column 3
    keep = [0, 1, 2, 4, 5, 6, 7, 8]
    np.testing.assert_allclose(Lf[:8, :8] @ Lf[:8, :8].T, H[np.ix_(keep, keep)], atol=1e-10)
    assert np.all(Lf[8] == 0) and np.all(Lf[:, 8] == 0)
    out = np.empty(8)
    rhs = rng.normal(size=8)
    kern._chol_solve(Lf, 8, rhs, out)
    np.testing.assert_allclose(H[np.ix_(keep, keep)] @ out, rhs, atol=1e-9)
    # A column in the span of the others is refused (it would make the factor singular).
    B = np.vstack([A[:3], A[0] + A[1]])
    G = B @ B.T
    Lg = np.zeros((4, 4))
    Lg[:3, :3] = np.linalg.cholesky(G[:3, :3])
    assert not kern._chol_append(Lg, 3, G[3, :3].copy(), float(G[3, 3]))


def test_bad_solver_is_a_config_error() -> None:
    X, y = _data(30, 5, 16)
    with pytest.raises(ConfigError, match="solver"):
        logistic_lasso_path(X, y, solver="fortran")  # type: ignore[arg-type]


@pytest.mark.parametrize("solver", ["compiled", "reference"])
def test_chosen_model_carries_a_kkt_certificate(solver: str) -> None:
    # Both solvers reach the same certified optimum at the chosen lambda; the certificate is
    # not a formality: moving one coefficient by 1e-3 breaks it.
    X, y = _data(80, 30, 16)
    fit = GlmnetLogisticCV(n_folds=5, random_state=0, solver=solver).fit(X, y)  # type: ignore[arg-type]
    assert fit.converged_ and fit.kkt_residual_ <= KKT_TOL
    y01 = (y == fit.classes_[1]).astype(float)
    moved = fit.coef_[0].copy()
    moved[0] += 1e-3
    assert kkt_residual(X, y01, moved, fit.intercept_[0], fit.lambda_) > 100 * KKT_TOL
    other = GlmnetLogisticCV(n_folds=5, random_state=0, solver="reference").fit(X, y)
    np.testing.assert_allclose(fit.coef_, other.coef_, atol=1e-6)


def _separable(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Near-separable labels: the full-data path ends early by glmnet's stop rules."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(60, 40))
    y = (X[:, 0] + 0.3 * X[:, 1] + 0.05 * rng.normal(size=60) > 0).astype(float)
    return X, y, make_foldid(60, 5, rng)


@pytest.mark.parametrize("rule", ["min", "1se"])
def test_path_cut_at_the_choice_chooses_and_predicts_the_same(rule: str) -> None:
    """``full_path=False`` fits the full-data path only down to the deviance's first minimum:
    the same lambda, the same model, on null, planted and near-separable data."""
    cases = [(*_data(70, 120, s), None) for s in (21, 22)]
    rng = np.random.default_rng(23)
    Xn = rng.normal(size=(80, 150))
    cases.append((Xn, (rng.random(80) < 0.3).astype(int), None))  # labels independent of X
    cases += [_separable(s) for s in (7, 8)]
    cut_short = 0
    for X, y, foldid in cases:
        foldid = make_foldid(len(y), 5, rng) if foldid is None else foldid
        whole = GlmnetLogisticCV(foldid=foldid, rule=rule).fit(X, y)
        cut = GlmnetLogisticCV(foldid=foldid, rule=rule, full_path=False).fit(X, y)
        assert cut.lambda_index_ == whole.lambda_index_ and cut.lambda_ == whole.lambda_
        np.testing.assert_array_equal(cut.coef_, whole.coef_)
        np.testing.assert_array_equal(cut.predict_proba(X), whole.predict_proba(X))
        # cut just after the first minimum of the deviance (it lies inside the path here)
        assert cut.lambdas_.shape[0] == int(np.argmin(whole.cv_mean_)) + 1
        np.testing.assert_array_equal(cut.lambdas_, whole.lambdas_[: cut.lambdas_.shape[0]])
        np.testing.assert_array_equal(cut.cv_mean_, whole.cv_mean_[: cut.lambdas_.shape[0]])
        cut_short += cut.lambdas_.shape[0] < whole.lambdas_.shape[0]
    assert cut_short >= 3  # the cut really saved part of the path


def test_path_cut_where_glmnet_stops_before_the_minimum(monkeypatch: pytest.MonkeyPatch) -> None:
    """When the folds' deviance still falls after the lambda where glmnet's rules end the
    full-data path, the minimum is taken over the lambdas that path kept, as with the whole
    path (forced here: fold predictions whose deviance falls to the end of the sequence)."""
    X, y, foldid = _separable(7)

    def falling(*args: object) -> np.ndarray:
        lambdas = args[5]
        assert isinstance(lambdas, np.ndarray)
        sign = np.where(y > 0, 1.0, -1.0)[:, None]
        return sign * (0.01 + 5.0 * (1.0 - lambdas / lambdas[0]))[None, :]  # surer as lambda falls

    monkeypatch.setattr(glmnet, "_fold_predictions", falling)
    whole = cv_logistic_lasso(X, y, foldid)
    cut = cv_logistic_lasso(X, y, foldid, full_path=False)
    L = whole.path.lambdas.shape[0]
    assert L < 100 and whole.index_min == L - 1  # the path stopped early; minimum at its end
    assert cut.path.lambdas.shape[0] == L and cut.index_min == whole.index_min
    assert cut.index_1se == whole.index_1se
    np.testing.assert_array_equal(cut.path.coefs[-1], whole.path.coefs[-1])
    np.testing.assert_array_equal(cut.cv_mean, whole.cv_mean)


def test_many_targets_equal_one_target_at_a_time() -> None:
    """Targets fitted together (sharing each outer fold's data layout and inner folds) give
    exactly the per-target predictions; a target that cannot be fitted is reported, NaN, and
    leaves the others alone."""
    X, y = _data(50, 80, 24)
    rng = np.random.default_rng(25)
    a = np.stack([rng.permutation(np.arange(50) % 3) for _ in range(2)])
    y2 = (rng.random(50) < 0.4).astype(int)
    rare = np.zeros(50, dtype=int)
    rare[np.flatnonzero(a[0] == 0)[:3]] = 1  # every positive in the first test fold
    Y = np.column_stack([y, y2, rare])
    many, errors = lasso_cross_val_predict_many(X, Y, a, inner_folds=4, seed=5)
    assert many.shape == (3, 2, 50)
    for t in (0, 1):
        one = lasso_cross_val_predict(X, Y[:, t], a, inner_folds=4, seed=5)
        np.testing.assert_array_equal(many[t], one)
        assert errors[t] is None
    assert errors[2] == "y: repeat 0 fold 0 has one class in its training rows"
    assert np.isnan(many[2]).all()
    with pytest.raises(DataError, match="repeat 0 fold 0 has one class"):
        lasso_cross_val_predict(X, rare, a, inner_folds=4, seed=5)
    with pytest.raises(DataError, match="labels must be 0 or 1"):
        lasso_cross_val_predict_many(X, Y + 1, a)
    with pytest.raises(ConfigError, match="unknown option"):
        lasso_cross_val_predict_many(X, Y, a, n_folds=3)


def test_engine_predicts_what_the_estimator_predicts() -> None:
    """The outer-CV engine cuts the full-data path at the choice and solves the inner folds'
    paths to 1e-5 lambda: on null and planted data every outer fold still picks the lambda,
    and so predicts exactly, what ``GlmnetLogisticCV`` at full tolerance picks."""
    rng = np.random.default_rng(26)
    X = rng.normal(size=(90, 300))
    y_null = (rng.random(90) < 0.3).astype(int)
    y_planted = (X[:, 0] - X[:, 1] + rng.normal(size=90) > 0.5).astype(int)
    a = np.stack([rng.permutation(np.arange(90) % 5) for _ in range(2)])
    many, errors = lasso_cross_val_predict_many(X, np.column_stack([y_null, y_planted]), a, seed=4)
    assert errors == [None, None]
    for t, y in enumerate((y_null, y_planted)):
        for r in range(2):
            for k in range(5):
                test, train = a[r] == k, a[r] != k
                foldid = make_foldid(int(train.sum()), 10, np.random.default_rng([4, r, k]))
                est = GlmnetLogisticCV(foldid=foldid).fit(X[train], y[train])
                np.testing.assert_array_equal(many[t, r, test], est.predict_proba(X[test])[:, 1])
