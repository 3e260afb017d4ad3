"""E1071SVR and the multi-gene engine: every option reaches libsvm, the scaling rules at their
edges (constant columns, one row), the RBF kernel, the input errors and their messages.

The reference is scikit-learn's ``SVR`` (the same libsvm) fitted on data scaled by hand the way
R's ``scale()`` does, so results must agree to rounding.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.metrics.pairwise import rbf_kernel as sk_rbf_kernel
from sklearn.svm import SVR

from histobench.plugins.errors import ConfigError, DataError
from histobench.tasks.estimators.svr import (
    E1071SVR,
    r_scale_params,
    rbf_kernel,
    svr_cross_val_predict,
)

# Not e1071's defaults: an option that does not reach libsvm changes the answer.
OPTIONS = dict(cost=3.0, epsilon=0.25, gamma=0.05, tolerance=1e-6, shrinking=False, cache_size=7.0)


def _data(n: int = 50, p: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) * rng.uniform(0.3, 4.0, size=p) + rng.uniform(-3, 3, size=p)
    Z = (X - X.mean(0)) / X.std(0)
    y = 4.0 + 3.0 * np.tanh(Z[:, 0]) - Z[:, 1] * Z[:, 2] + 0.3 * rng.normal(size=n)
    return X, y


def _sk_predict(Xtr, ytr, Xte, center, scale, yc, ys, **opts):  # type: ignore[no-untyped-def]
    svr = SVR(
        kernel="rbf",
        gamma=opts.get("gamma", 1.0 / Xtr.shape[1]),
        C=opts.get("cost", 1.0),
        epsilon=opts.get("epsilon", 0.1),
        tol=opts.get("tolerance", 1e-3),
        shrinking=opts.get("shrinking", True),
    ).fit((Xtr - center) / scale, (ytr - yc) / ys)
    return svr.predict((Xte - center) / scale) * ys + yc, svr


def _plan(n: int, repeats: int, folds: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([rng.permutation(np.arange(n) % folds) for _ in range(repeats)])


def test_every_option_reaches_libsvm() -> None:
    X, y = _data()
    model = E1071SVR(**OPTIONS).fit(X[:40], y[:40])  # type: ignore[arg-type]
    c, s = X[:40].mean(0), X[:40].std(0, ddof=1)
    yc, ys = y[:40].mean(), y[:40].std(ddof=1)
    ref, svr = _sk_predict(X[:40], y[:40], X[40:], c, s, yc, ys, **OPTIONS)
    np.testing.assert_allclose(model.predict(X[40:]), ref, rtol=1e-12)
    params = model.svr_.get_params()
    assert params["kernel"] == "rbf" and params["C"] == 3.0 and params["epsilon"] == 0.25
    assert params["gamma"] == 0.05 and params["tol"] == 1e-6 and params["shrinking"] is False
    assert params["cache_size"] == 7.0 and model.gamma_ == 0.05
    assert model.n_iter_ == svr.n_iter_ > 0 and model.converged_ is True and model.scaled_
    # Defaults: e1071's gamma = 1 / ncol(x), cost 1, epsilon 0.1, tolerance 1e-3, shrinking.
    default = E1071SVR().fit(X[:40], y[:40])
    ref, _ = _sk_predict(X[:40], y[:40], X[40:], c, s, yc, ys)
    np.testing.assert_allclose(default.predict(X[40:]), ref, rtol=1e-12)
    assert default.gamma_ == 1.0 / 6 and default.svr_.get_params()["cache_size"] == 40.0
    assert default.svr_.get_params()["shrinking"] is True


def test_constant_column_e1071_scales_nothing() -> None:
    X, y = _data(seed=1)
    X[:, 2] = -1.5
    with pytest.warns(RuntimeWarning) as record:
        model = E1071SVR().fit(X[:40], y[:40])
    assert [str(w.message) for w in record] == [
        "constant feature column(s): e1071 cannot scale data, fitting unscaled x and y"
    ]
    assert not model.scaled_ and model.y_center_ == 0.0 and model.y_scale_ == 1.0
    np.testing.assert_array_equal(model.x_center_, np.zeros(6))
    np.testing.assert_array_equal(model.x_scale_, np.ones(6))
    ref, _ = _sk_predict(X[:40], y[:40], X[40:], 0.0, 1.0, 0.0, 1.0)
    np.testing.assert_allclose(model.predict(X[40:]), ref, rtol=1e-12)


def test_constant_column_skip_scales_the_others_and_y() -> None:
    X, y = _data(seed=2)
    X[:, 4] = 7.0
    model = E1071SVR(constant_columns="skip").fit(X[:40], y[:40])
    c, s = X[:40].mean(0), X[:40].std(0, ddof=1)
    c[4], s[4] = 0.0, 1.0
    np.testing.assert_allclose(model.x_center_, c, rtol=1e-15)
    np.testing.assert_allclose(model.x_scale_, s, rtol=1e-15)
    yc, ys = y[:40].mean(), y[:40].std(ddof=1)
    assert model.scaled_ and model.y_center_ == pytest.approx(yc, rel=1e-15)
    ref, _ = _sk_predict(X[:40], y[:40], X[40:], c, s, yc, ys)
    np.testing.assert_allclose(model.predict(X[40:]), ref, rtol=1e-12)


def test_r_scale_params_at_the_edges() -> None:
    X, _ = _data(n=8, p=3)
    center, scale, scale_y = r_scale_params(X)
    np.testing.assert_allclose(center, X.mean(0))
    np.testing.assert_allclose(scale, X.std(0, ddof=1))
    assert scale_y is True
    # One row: R's sd is NA; every column counts as constant.
    one = X[:1]
    c1, s1, y1 = r_scale_params(one)
    assert np.array_equal(c1, np.zeros(3)) and np.array_equal(s1, np.ones(3)) and y1 is False
    c2, s2, y2 = r_scale_params(one, "skip")
    assert np.array_equal(c2, np.zeros(3)) and np.array_equal(s2, np.ones(3)) and y2 is True
    # Two rows: n - 1 = 1 in the denominator.
    two = X[:2]
    np.testing.assert_allclose(r_scale_params(two)[1], np.abs(two[0] - two[1]) / np.sqrt(2))


def test_option_and_input_errors_are_one_line() -> None:
    X, y = _data(n=30, p=4)
    msg = r"^constant_columns: expected 'e1071' or 'skip', got 'none'$"
    with pytest.raises(ConfigError, match=msg):
        E1071SVR(constant_columns="none").fit(X, y)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=msg):
        svr_cross_val_predict(X, y, _plan(30, 1, 3), constant_columns="none")  # type: ignore[arg-type]
    with pytest.raises(DataError, match=r"^y: constant target on the training rows, cannot"):
        E1071SVR().fit(X, np.full(30, 2.0))
    a = _plan(30, 1, 3)
    with pytest.raises(DataError, match=r"^X: expected a 2-D array \(samples x features\), got "
                       r"shape \(30,\)$"):  # fmt: skip
        svr_cross_val_predict(X[:, 0], y, a)
    with pytest.raises(DataError, match=r"^X: empty array of shape \(30, 0\)$"):
        svr_cross_val_predict(X[:, :0], y, a)
    with pytest.raises(DataError, match=r"^X: empty array of shape \(0, 4\)$"):
        svr_cross_val_predict(X[:0], y[:0], a[:, :0])
    for bad in (np.nan, np.inf):
        X2 = X.copy()
        X2[3, 1] = bad
        with pytest.raises(DataError, match=r"^X: contains NaN or infinite values$"):
            svr_cross_val_predict(X2, y, a)
    with pytest.raises(DataError, match=r"^Y: 29 rows for 30 rows of X$"):
        svr_cross_val_predict(X, y[:29], a)
    y2 = y.copy()
    y2[4] = -np.inf
    with pytest.raises(DataError, match=r"^Y: contains infinite values$"):
        svr_cross_val_predict(X, y2, a)


def test_engine_messages_name_the_gene_and_the_fold() -> None:
    X, y = _data(n=30, p=4)
    a = np.zeros((1, 30), dtype=int)
    a[0, 20:] = 1
    Y = np.column_stack([y, y])
    Y[:20, 1] = np.nan
    Y[20, 1] = 1.0  # one training value for gene 1 in fold 0 (trained on rows 20..29)
    Y[21:, 1] = np.nan
    with pytest.raises(DataError, match=r"^Y column 1: fewer than 2 training values in repeat 0 "
                       r"fold 0$"):  # fmt: skip
        svr_cross_val_predict(X, Y, a)
    Y[21, 1] = 1.0  # two, but equal
    with pytest.raises(DataError, match=r"^Y column 1 in repeat 0 fold 0: constant target"):
        svr_cross_val_predict(X, Y, a)
    Y[21, 1] = 2.0  # two different values: enough; fold 1 trains gene 1 on rows 0 and 1
    Y[0, 1], Y[1, 1] = 5.0, 6.0
    out = svr_cross_val_predict(X, Y, a)
    assert out.shape == (1, 30, 2) and np.isfinite(out).all()


@pytest.mark.parametrize("libsvm", ["direct", "public"])
@pytest.mark.parametrize("constant", [None, "e1071", "skip"])
def test_engine_equals_the_estimator_with_every_option(libsvm: str, constant: str | None) -> None:
    X, y = _data(n=36, p=5, seed=3)
    if constant is not None:
        X[:, 1] = 0.5
    Y = np.column_stack([y, np.cos(X[:, 0]) + 0.1 * X[:, 3]])
    a = _plan(36, repeats=2, folds=3, seed=5)
    cc = constant or "e1071"
    # libsvm's own RBF and the engine's kernel round differently; with a constant column (and
    # unscaled x for e1071) that is amplified to ~1e-7 by the solver's tolerance of 1e-6.
    rtol = 1e-9 if constant is None else 1e-5
    out = svr_cross_val_predict(X, Y, a, constant_columns=cc, libsvm=libsvm, **OPTIONS)  # type: ignore[arg-type]
    assert out.shape == (2, 36, 2)
    for r in range(2):
        for k in range(3):
            te = a[r] == k
            for g in range(2):
                with warnings.catch_warnings():  # e1071's "cannot scale" warning
                    warnings.simplefilter("ignore", RuntimeWarning)
                    est = E1071SVR(constant_columns=cc, **OPTIONS).fit(X[~te], Y[~te, g])  # type: ignore[arg-type]
                np.testing.assert_allclose(out[r, te, g], est.predict(X[te]), rtol=rtol, atol=rtol)


def test_engine_one_gene_and_job_counts() -> None:
    X, y = _data(n=30, p=4, seed=4)
    a = _plan(30, repeats=2, folds=3, seed=1)
    one = svr_cross_val_predict(X, y, a)  # a 1-D Y is one gene
    assert one.shape == (2, 30, 1)
    np.testing.assert_array_equal(one, svr_cross_val_predict(X, y[:, None], a))
    np.testing.assert_array_equal(one, svr_cross_val_predict(X, y, a, n_jobs=None))
    np.testing.assert_array_equal(one, svr_cross_val_predict(X, y, a, n_jobs=-1))
    # A one-repeat plan may be given as (N,).
    np.testing.assert_array_equal(one[:1], svr_cross_val_predict(X, y, a[0]))
    # The gamma given is the one used: not the default 1 / ncol.
    assert not np.allclose(svr_cross_val_predict(X, y, a, gamma=2.0), one)
    np.testing.assert_allclose(svr_cross_val_predict(X, y, a, gamma=0.25), one, rtol=1e-12)


def test_rbf_kernel_matches_its_definition() -> None:
    rng = np.random.default_rng(6)
    A, B = rng.normal(size=(7, 4)) * 10.0, rng.normal(size=(5, 4)) * 10.0
    np.testing.assert_allclose(rbf_kernel(A, B, 0.01), sk_rbf_kernel(A, B, gamma=0.01), rtol=1e-10)
    d2 = ((A[:, None, :] - B[None, :, :]) ** 2).sum(-1)
    np.testing.assert_allclose(rbf_kernel(A, B, 0.01), np.exp(-0.01 * d2), rtol=1e-10)
    # Rounding makes some squared distances of a row to itself negative: clipped to 0, so no
    # entry exceeds 1.
    big = rng.normal(size=(40, 3)) * 1e4 + 1e5
    sq = (big * big).sum(1)[:, None] + (big * big).sum(1)[None, :] - 2.0 * big @ big.T
    assert np.diag(sq).min() < 0.0
    K = rbf_kernel(big, big, 1e-6)
    assert np.all(K <= 1.0) and np.diag(K).max() == 1.0


def test_warning_points_at_the_caller() -> None:
    from histobench.tasks.estimators import svr as svr_module

    X, y = _data(n=20, p=3, seed=7)
    X[:, 0] = 1.0
    with pytest.warns(RuntimeWarning, match="cannot scale data") as record:
        E1071SVR().fit(X, y)
    # stacklevel=2: attributed to the caller of fit() (here this file), not to svr.py itself.
    assert record[0].filename != svr_module.__file__


def test_one_and_two_training_rows_warn_nothing() -> None:
    X, y = _data(n=8, p=3, seed=8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # R's sd of one value is NA: no numpy warning either
        c1, s1, y1 = r_scale_params(X[:1])
        assert y1 is False and np.array_equal(s1, np.ones(3)) and np.array_equal(c1, np.zeros(3))
        with pytest.raises(DataError, match=r"^y: constant target on the training rows"):
            E1071SVR(constant_columns="skip").fit(X[:1], y[:1])
        model = E1071SVR(constant_columns="skip").fit(X[:2], y[:2])  # two rows are enough
    assert model.y_scale_ == pytest.approx(abs(y[0] - y[1]) / np.sqrt(2), rel=1e-14)


def test_engine_one_feature() -> None:
    X, y = _data(n=30, p=3, seed=9)
    X = X[:, :1]
    a = _plan(30, repeats=1, folds=3, seed=2)
    out = svr_cross_val_predict(X, y, a)
    for k in range(3):
        te = a[0] == k
        ref = E1071SVR().fit(X[~te], y[~te]).predict(X[te])
        np.testing.assert_allclose(out[0, te, 0], ref, rtol=1e-9, atol=1e-9)


def test_engine_gene_with_scattered_gaps_trains_on_its_values_only() -> None:
    # NaN units spread through the training rows (not only at its start or end): the kernel
    # sub-matrix must pair every remaining unit with itself, rows and columns alike.
    X, y = _data(n=40, p=4, seed=10)
    Y = np.column_stack([y, -y + X[:, 0]])
    Y[[2, 9, 13, 22, 31, 35], 1] = np.nan
    a = _plan(40, repeats=1, folds=4, seed=3)
    out = svr_cross_val_predict(X, Y, a, **OPTIONS)  # type: ignore[arg-type]
    for k in range(4):
        te, tr = a[0] == k, a[0] != k
        c, s = X[tr].mean(0), X[tr].std(0, ddof=1)
        ok = tr & np.isfinite(Y[:, 1])
        assert ok.sum() < tr.sum()  # this fold trains gene 1 on a subset
        yc, ys = Y[ok, 1].mean(), Y[ok, 1].std(ddof=1)
        ref, _ = _sk_predict(X[ok], Y[ok, 1], X[te], c, s, yc, ys, **OPTIONS)
        np.testing.assert_allclose(out[0, te, 1], ref, rtol=1e-8, atol=1e-8)


def test_libsvm_option_selects_the_direct_or_the_public_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from histobench.tasks.estimators import svr as svr_module

    built: list[dict[str, object]] = []

    class SpySVR(SVR):
        def __init__(self, **kw: object) -> None:
            built.append(kw)
            super().__init__(**kw)  # type: ignore[arg-type]

    monkeypatch.setattr(svr_module, "SVR", SpySVR)
    X, y = _data(n=24, p=3, seed=11)
    a = _plan(24, repeats=1, folds=3)
    direct = svr_cross_val_predict(X, y, a)  # the default: libsvm called directly
    assert built == []
    public = svr_cross_val_predict(X, y, a, libsvm="public")
    assert len(built) == 3 and all(kw["kernel"] == "precomputed" for kw in built)
    np.testing.assert_allclose(public, direct, rtol=1e-12)


@pytest.mark.parametrize("libsvm", ["direct", "public"])
def test_shrinking_reaches_libsvm_on_a_large_fold(libsvm: str) -> None:
    # libsvm shrinks only after min(n, 1000) iterations: with 1,150 training units shrinking
    # on and off stop at different points (both within tolerance), so the option is visible.
    # (At this size the engine's precomputed kernel and libsvm's own RBF also take different
    # paths: engine and estimator agree to ~5e-4 here, within the tolerance, not to rounding.)
    rng = np.random.default_rng(12)
    X = rng.normal(size=(1200, 5))
    y = np.sin(X[:, 0]) + X[:, 1] * X[:, 2] + 0.3 * rng.normal(size=1200)
    a = np.ones((1, 1200), dtype=int)
    a[0, :50] = 0
    on = svr_cross_val_predict(X, y, a, shrinking=True, libsvm=libsvm)  # type: ignore[arg-type]
    off = svr_cross_val_predict(X, y, a, shrinking=False, libsvm=libsvm)  # type: ignore[arg-type]
    assert np.abs(on[0, :50] - off[0, :50]).max() > 1e-6
    default = svr_cross_val_predict(X, y, a, libsvm=libsvm)  # type: ignore[arg-type]
    np.testing.assert_array_equal(default, on)  # e1071's default: shrinking on
