"""E1071SVR against R e1071, and the multi-gene engine against the per-gene estimator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.svm import SVR

from histobench.plugins.errors import DataError
from histobench.tasks.estimators.svr import E1071SVR, svr_cross_val_predict
from tests.tasks.rparity import r_has_package, read_csv, requires_r, run_r, write_csv

requires_e1071 = pytest.mark.skipif(
    not r_has_package("e1071"), reason="R package e1071 is not installed (R parity test)"
)


def _data(n: int = 80, p: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    # Columns on different scales and offsets, so scaling matters; a planted non-linear signal.
    X = rng.normal(size=(n, p)) * rng.uniform(0.2, 5.0, size=p) + rng.uniform(-3, 3, size=p)
    Z = (X - X.mean(0)) / X.std(0)
    y = 5.0 + 2.0 * np.tanh(Z[:, 0]) - 1.5 * Z[:, 1] * Z[:, 2] + 0.5 * rng.normal(size=n)
    return X, y


def _e1071_predict(tmp_path: Path, Xtr: np.ndarray, ytr: np.ndarray, Xte: np.ndarray) -> np.ndarray:
    write_csv(tmp_path / "xtr.csv", Xtr)
    write_csv(tmp_path / "ytr.csv", ytr[:, None])
    write_csv(tmp_path / "xte.csv", Xte)
    run_r(
        """
        suppressMessages(library(e1071))
        x <- as.matrix(read.csv("xtr.csv", header=FALSE))
        y <- read.csv("ytr.csv", header=FALSE)[, 1]
        xt <- as.matrix(read.csv("xte.csv", header=FALSE))
        m <- suppressWarnings(svm(x, y, type="eps-regression"))
        write.table(predict(m, xt), "pred.csv", row.names=FALSE, col.names=FALSE)
        """,
        tmp_path,
    )
    return read_csv(tmp_path / "pred.csv")[:, 0]


@requires_r
@requires_e1071
@pytest.mark.r
def test_matches_e1071_on_held_out_rows(tmp_path: Path) -> None:
    X, y = _data()
    r_pred = _e1071_predict(tmp_path, X[:60], y[:60], X[60:])
    py_pred = E1071SVR().fit(X[:60], y[:60]).predict(X[60:])
    np.testing.assert_allclose(py_pred, r_pred, rtol=1e-3)
    # The comparison is not vacuous: without e1071's scaling the predictions are far off.
    raw = SVR(gamma=1.0 / X.shape[1]).fit(X[:60], y[:60]).predict(X[60:])
    assert np.max(np.abs(raw - r_pred) / np.abs(r_pred)) > 1e-2


@requires_r
@requires_e1071
@pytest.mark.r
def test_constant_column_follows_e1071(tmp_path: Path) -> None:
    X, y = _data(n=50, p=8, seed=3)
    X[:, 4] = 2.5  # e1071 then scales nothing at all, neither x nor y
    r_pred = _e1071_predict(tmp_path, X[:40], y[:40], X[40:])
    with pytest.warns(RuntimeWarning, match="constant"):
        model = E1071SVR().fit(X[:40], y[:40])
    assert not model.scaled_
    np.testing.assert_allclose(model.predict(X[40:]), r_pred, rtol=1e-3)
    # "skip" scales the other columns and y instead, which is a different model.
    skip = E1071SVR(constant_columns="skip").fit(X[:40], y[:40])
    assert skip.scaled_ and skip.x_scale_[4] == 1.0 and skip.x_center_[4] == 0.0
    assert np.max(np.abs(skip.predict(X[40:]) - r_pred)) > 1e-3


def test_scaler_uses_training_rows_only() -> None:
    X, y = _data(n=40, p=6)
    model = E1071SVR().fit(X[:30], y[:30])
    np.testing.assert_allclose(model.x_center_, X[:30].mean(0))
    np.testing.assert_allclose(model.x_scale_, X[:30].std(0, ddof=1))  # R's sd: n - 1
    assert model.y_center_ == pytest.approx(y[:30].mean())
    assert model.y_scale_ == pytest.approx(y[:30].std(ddof=1))
    assert model.gamma_ == pytest.approx(1 / 6)


def test_constant_target_is_a_data_error() -> None:
    X, _ = _data(n=30, p=5)
    with pytest.raises(DataError, match="constant target"):
        E1071SVR().fit(X, np.full(30, 3.0))


def _plan(n: int, repeats: int, folds: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([rng.permutation(np.arange(n) % folds) for _ in range(repeats)])


def test_engine_equals_per_gene_estimator() -> None:
    rng = np.random.default_rng(1)
    X, _ = _data(n=60, p=12, seed=1)
    Y = np.column_stack(
        [X[:, g] * 0.3 + np.sin(X[:, g + 1]) + rng.normal(size=60) for g in range(5)]
    )
    a = _plan(60, repeats=2, folds=5)
    fast = svr_cross_val_predict(X, Y, a)
    assert fast.shape == (2, 60, 5) and np.isfinite(fast).all()
    ref = np.empty_like(fast)
    for r in range(2):
        for k in range(5):
            te = a[r] == k
            for g in range(5):
                ref[r, te, g] = E1071SVR().fit(X[~te], Y[~te, g]).predict(X[te])
    np.testing.assert_allclose(fast, ref, rtol=1e-9, atol=1e-9)
    # Threads give the same numbers.
    np.testing.assert_array_equal(svr_cross_val_predict(X, Y, a, n_jobs=2), fast)


def test_engine_is_silent(capfd: pytest.CaptureFixture[str]) -> None:
    # libsvm writes "optimization finished" to the C stdout unless its verbosity is turned off.
    from sklearn.svm import _libsvm

    _libsvm.set_verbosity_wrap(1)  # as a verbose scikit-learn fit elsewhere would leave it
    X, y = _data(n=40, p=5, seed=3)
    capfd.readouterr()
    svr_cross_val_predict(X, np.column_stack([y, -y]), _plan(40, 1, 4))
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_engine_nan_target_units_sit_out_that_gene() -> None:
    X, y = _data(n=50, p=6, seed=2)
    Y = np.column_stack([y, -y + X[:, 0]])
    Y[[3, 7, 11], 1] = np.nan
    a = _plan(50, repeats=1, folds=5, seed=4)
    out = svr_cross_val_predict(X, Y, a)
    assert np.isfinite(out).all()  # units without a value are still predicted
    # Gene 0 is untouched by gene 1's gaps.
    np.testing.assert_allclose(out[..., 0], svr_cross_val_predict(X, Y[:, :1], a)[..., 0])
    # Gene 1 in fold k: x scaled on all training units, SVR on those with a value.
    k = a[0, 3]
    te = a[0] == k
    tr = ~te
    c, s = X[tr].mean(0), X[tr].std(0, ddof=1)
    ok = tr & np.isfinite(Y[:, 1])
    yc, ys = Y[ok, 1].mean(), Y[ok, 1].std(ddof=1)
    svr = SVR(gamma=1 / 6, C=1, epsilon=0.1, tol=1e-3).fit((X[ok] - c) / s, (Y[ok, 1] - yc) / ys)
    np.testing.assert_allclose(out[0, te, 1], svr.predict((X[te] - c) / s) * ys + yc, rtol=1e-8)


def test_engine_does_not_leak_test_rows() -> None:
    X, y = _data(n=60, p=8, seed=5)
    Y = np.column_stack([y, y**2])
    a = _plan(60, repeats=1, folds=4, seed=6)
    base = svr_cross_val_predict(X, Y, a)
    test0 = np.flatnonzero(a[0] == 0)
    altered, kept = test0[: len(test0) // 2], test0[len(test0) // 2 :]
    X2, Y2 = X.copy(), Y.copy()
    X2[altered] = 1e3 * np.random.default_rng(0).normal(size=(len(altered), 8))
    Y2[test0] = -1e6  # test targets are never looked at for their own fold
    out = svr_cross_val_predict(X2, Y2, a)
    np.testing.assert_allclose(out[0, kept], base[0, kept], rtol=1e-12)


def test_engine_constant_gene_is_a_data_error() -> None:
    X, y = _data(n=30, p=5)
    Y = np.column_stack([y, np.ones(30)])
    with pytest.raises(DataError, match="Y column 1"):
        svr_cross_val_predict(X, Y, _plan(30, 1, 3))
