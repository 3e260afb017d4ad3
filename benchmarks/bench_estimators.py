"""Speed of the evaluation estimators at the study's size, each beside its naive baseline.

    python benchmarks/bench_estimators.py [--repeats 1] [--n-jobs 2] [--only svr,lasso,svc]
    python benchmarks/bench_estimators.py --only svc-handover   # the SVC's dual_tol choice
    python benchmarks/bench_estimators.py --only svc-shapes     # crc-tissue's solver choice
    python benchmarks/bench_estimators.py --only threads        # BLAS threads of threaded fits

Generated data of the study's shape: 344 patients x 2,048 features (907 genes for SVR, 9 genes
for LASSO), 7,180 tiles x 2,048 features x 9 classes for the SVC. The full 50x5 grid is
extrapolated from ``--repeats`` measured repeats (the output says so); baselines are timed on a
small subset in the same run and extrapolated the same way. Prints a Markdown section.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one BLAS thread per worker: we parallelise jobs
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from joblib import Parallel, delayed  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.linear_model import LogisticRegressionCV  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402
from sklearn.svm import SVR, LinearSVC  # noqa: E402

from histobench.tasks.estimators._glmnet_path import Design, fit_rows  # noqa: E402
from histobench.tasks.estimators._svc_primal import fun_grad_gap  # noqa: E402
from histobench.tasks.estimators.glmnet import (  # noqa: E402
    kkt_residual,
    lasso_cross_val_predict,
    make_foldid,
)
from histobench.tasks.estimators.linear_svc import FastLinearSVC  # noqa: E402
from histobench.tasks.estimators.svr import svr_cross_val_predict  # noqa: E402

FULL_REPEATS, FOLDS = 50, 5
N_PATIENTS, N_FEATURES, N_GENES_SVR, N_GENES_LASSO = 344, 2048, 907, 9
N_TILES, N_CLASSES = 7180, 9


def plan(n: int, repeats: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.stack([rng.permutation(np.arange(n) % FOLDS) for _ in range(repeats)])


def patient_features(rng: np.random.Generator) -> np.ndarray:
    # Non-negative, skewed, correlated columns like averaged CNN activations.
    base = rng.gamma(2.0, 1.0, size=(N_PATIENTS, 64)) @ rng.uniform(0, 0.1, size=(64, N_FEATURES))
    return base + rng.gamma(1.0, 0.2, size=(N_PATIENTS, N_FEATURES))


def timed(fn, *args, **kwargs) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - t, out


def fmt(seconds: float) -> str:
    return f"{seconds:,.1f} s" if seconds < 600 else f"{seconds / 60:,.1f} min"


def bench_svr(args: argparse.Namespace, rng: np.random.Generator) -> list[str]:
    X = patient_features(rng)
    W = rng.normal(size=(N_FEATURES, N_GENES_SVR)) / np.sqrt(N_FEATURES)
    Y = np.log1p(np.exp(X @ W + rng.normal(size=(N_PATIENTS, N_GENES_SVR))))
    a = plan(N_PATIENTS, args.repeats)
    rows = []
    t_eng, _ = timed(svr_cross_val_predict, X, Y, a, n_jobs=args.n_jobs, backend="threading")
    fits = args.repeats * FOLDS * N_GENES_SVR
    full = t_eng * FULL_REPEATS / args.repeats
    # Backend comparison on a slice of genes.
    g = Y[:, :100]
    t_thr, _ = timed(svr_cross_val_predict, X, g, a[:1], n_jobs=args.n_jobs, backend="threading")
    t_loky, _ = timed(svr_cross_val_predict, X, g, a[:1], n_jobs=args.n_jobs, backend="loky")
    # Naive: scikit-learn SVR (RBF inside libsvm) per gene with scaling, on 1 fold x 20 genes.
    te = a[0] == 0
    sc = StandardScaler().fit(X[~te])
    Xtr, Xte = sc.transform(X[~te]), sc.transform(X[te])
    t0 = time.perf_counter()
    for j in range(20):
        yy = Y[~te, j]
        m = SVR(gamma=1.0 / N_FEATURES).fit(Xtr, (yy - yy.mean()) / yy.std(ddof=1))
        m.predict(Xte)
    per_naive = (time.perf_counter() - t0) / 20
    naive_full = per_naive * FULL_REPEATS * FOLDS * N_GENES_SVR
    rows.append(
        f"| SVR, 907 genes x 50x5 folds (344x2048) | {fmt(full)} (measured {fmt(t_eng)} for "
        f"{args.repeats} repeat(s) = {fits:,} fits, {1e3 * t_eng / fits:.2f} ms/fit, "
        f"n_jobs={args.n_jobs}) | {fmt(naive_full)} ({1e3 * per_naive:.1f} ms/fit, 1 core, "
        f"20 fits) | {naive_full / full:.0f}x |"
    )
    # The private libsvm call against scikit-learn's public SVR(kernel="precomputed"): same
    # grid slice (all genes, the measured repeats), same n_jobs, same threads.
    t_pub, _ = timed(
        svr_cross_val_predict, X, Y, a, n_jobs=args.n_jobs, backend="threading", libsvm="public"
    )
    rows.append(
        f"| SVR engine, 907 genes x {args.repeats}x5 folds, n_jobs={args.n_jobs}: libsvm called "
        f"directly vs public `SVR(kernel='precomputed')` | {fmt(t_eng)} | {fmt(t_pub)} | "
        f"{t_pub / t_eng:.2f}x |"
    )
    rows.append(
        f"| SVR backend, 100 genes x 5 folds, n_jobs={args.n_jobs} | threads {fmt(t_thr)} | "
        f"processes (loky) {fmt(t_loky)} | {t_loky / t_thr:.1f}x |"
    )
    return rows


def _lasso_cpu_per_fit(X: np.ndarray, y: np.ndarray, a: np.ndarray, solver: str) -> float:
    """CPU seconds per outer fit in this process (one BLAS thread): 5 outer fits of repeat 0."""
    t = time.process_time()
    lasso_cross_val_predict(X, y, a[:1], seed=0, n_jobs=1, solver=solver)
    return (time.process_time() - t) / FOLDS


def bench_lasso(args: argparse.Namespace, rng: np.random.Generator) -> list[str]:
    X = patient_features(rng)
    Z = (X - X.mean(0)) / X.std(0)
    genes = []
    for g in range(N_GENES_LASSO):
        eta = -1.0 + Z[:, 3 * g : 3 * g + 3] @ np.array([0.8, -0.6, 0.4])
        genes.append((rng.uniform(size=N_PATIENTS) < 1 / (1 + np.exp(-eta))).astype(int))
    a = plan(N_PATIENTS, args.repeats)
    n_genes = min(args.lasso_genes, N_GENES_LASSO)
    # Warm-up: compiles (or loads from numba's cache) the solver here and in the workers.
    small = np.arange(60)
    lasso_cross_val_predict(X[small], genes[0][small], a[:1, small], n_jobs=args.n_jobs)
    t0 = time.perf_counter()
    for g in range(n_genes):
        lasso_cross_val_predict(X, genes[g], a, seed=g, n_jobs=args.n_jobs)
    t_meas = time.perf_counter() - t0
    outer = n_genes * args.repeats * FOLDS
    full = t_meas / outer * N_GENES_LASSO * FULL_REPEATS * FOLDS
    # CPU per outer fit, one thread: the compiled solver and the numpy reference solver.
    cpu_fast = _lasso_cpu_per_fit(X, genes[0], a, "compiled")
    cpu_ref = _lasso_cpu_per_fit(X, genes[0], a, "reference")
    grid = N_GENES_LASSO * FULL_REPEATS * FOLDS
    # Naive: LogisticRegressionCV L1/liblinear with 10-fold inner CV, one outer fit.
    te = a[0] == 0
    sc = StandardScaler().fit(X[~te])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t_naive, _ = timed(
            LogisticRegressionCV(
                Cs=10, cv=10, penalty="l1", solver="liblinear", scoring="neg_log_loss"
            ).fit,
            sc.transform(X[~te]),
            genes[0][~te],
        )
    naive_full = t_naive * grid
    return [
        f"| LASSO cv.glmnet, 9 genes x 50x5 folds, inner 10-fold CV (344x2048) | {fmt(full)} "
        f"(measured {fmt(t_meas)} for {outer} outer fits = {n_genes} gene(s) x {args.repeats} "
        f"repeat(s) x 5, {t_meas / outer:.2f} s/fit, n_jobs={args.n_jobs}) | {fmt(naive_full)} "
        f"(LogisticRegressionCV L1/liblinear, 10 Cs, {t_naive:.1f} s/fit, 1 core) | "
        f"{naive_full / full:.1f}x |",
        f"| LASSO solver, CPU per outer fit (1 thread, 5 fits; 11 paths each) | compiled "
        f"{cpu_fast:.3f} s (grid {fmt(cpu_fast * grid)} CPU, {fmt(cpu_fast * grid / 2)} on 2 "
        f"cores) | numpy reference solver {cpu_ref:.3f} s (grid {fmt(cpu_ref * grid)} CPU) | "
        f"{cpu_ref / cpu_fast:.1f}x |",
    ]


def _glmnet_fortran_paths(Xtr: np.ndarray, y: np.ndarray, foldid: np.ndarray, tol: float) -> list:  # type: ignore[type-arg]
    """The 11 paths of one cv.glmnet (full data + 10 folds) by glmnet's own Fortran
    (PyPI ``python-glmnet``, ``lognet``), glmnet's default lambda sequence (ratio 0.01, n < p)."""
    from glmnet import LogitNet

    def fit(rows: np.ndarray) -> object:
        return LogitNet(n_splits=0, min_lambda_ratio=0.01, tol=tol).fit(Xtr[rows], y[rows])

    return [fit(np.arange(len(y)))] + [fit(np.flatnonzero(foldid != f)) for f in range(1, 11)]


def _ours_paths(Xtr: np.ndarray, y: np.ndarray, foldid: np.ndarray) -> list:  # type: ignore[type-arg]
    design = Design.of(Xtr)
    y = y.astype(np.float64)
    rows = [np.arange(len(y))] + [np.flatnonzero(foldid != f) for f in range(1, 11)]
    return [fit_rows(Xtr, design, r, y[r], None, 100, None, 1e-12) for r in rows]


def _path_kkt(
    Xtr: np.ndarray, y: np.ndarray, coefs: np.ndarray, b0: np.ndarray, lams: np.ndarray
) -> float:
    return max(
        kkt_residual(Xtr, y.astype(float), c, b, lam)
        for c, b, lam in zip(coefs, b0, lams, strict=True)
    )


def bench_glmnet_fortran(args: argparse.Namespace, rng: np.random.Generator) -> list[str]:
    """Our compiled path against glmnet's Fortran on the same 11 paths of one outer fit."""
    try:
        import glmnet  # noqa: F401
    except ImportError as err:
        return [f"| python-glmnet | not importable: {err} | | |"]
    X = patient_features(rng)
    Z = (X - X.mean(0)) / X.std(0)
    rows = []
    for label, signal in (("signal", True), ("null labels", False)):
        eta = -1.0 + (Z[:, :3] @ np.array([0.8, -0.6, 0.4]) if signal else 0.0)
        y = (rng.uniform(size=N_PATIENTS) < 1 / (1 + np.exp(-eta))).astype(int)
        train = np.arange(275)  # one outer training fold of 344 patients
        Xtr, ytr = X[train], y[train]
        foldid = make_foldid(275, 10, np.random.default_rng(1))
        _ours_paths(Xtr[:80], ytr[:80], foldid[:80])  # warm-up (numba cache)
        t = time.process_time()
        ours = _ours_paths(Xtr, ytr, foldid)
        t_ours = time.process_time() - t
        for tol in (1e-7, 1e-10):
            t = time.process_time()
            fort = _glmnet_fortran_paths(Xtr, ytr, foldid, tol)
            t_fort = time.process_time() - t
            a, b = ours[0], fort[0]
            L = min(len(a.lambdas), len(b.lambda_path_))
            diff = float(np.max(np.abs(a.coefs[:L] - b.coef_path_[0].T[:L])))
            kkt_a = _path_kkt(Xtr, ytr, a.coefs[:L], a.intercepts[:L], a.lambdas[:L])
            kkt_b = _path_kkt(
                Xtr, ytr, b.coef_path_[0].T[:L], b.intercept_path_[0][:L], b.lambda_path_[:L]
            )
            rows.append(
                f"| LASSO path, one outer fit = 11 paths (275x2048, {label}), CPU, 1 thread | "
                f"compiled {t_ours:.2f} s (worst KKT residual {kkt_a:.0e} x lambda) | "
                f"glmnet Fortran (python-glmnet 2.6.1, thresh {tol:g}) {t_fort:.2f} s (worst KKT "
                f"{kkt_b:.0e} x lambda; max |coef difference| {diff:.1e}) | {t_fort / t_ours:.1f}x |"
            )
    return rows


def _svc_objective(Xs: np.ndarray, y: np.ndarray, coef_std: np.ndarray) -> float:
    """liblinear's primal objective (C = 1, intercept_scaling = 1) summed over the one-vs-rest
    problems; ``Xs`` standardised, ``coef_std`` (K, p + 1) with the intercept last."""
    Y = np.where(y[:, None] == np.unique(y)[None, :], 1.0, -1.0)
    z = np.maximum(1.0 - Y * (Xs @ coef_std[:, :-1].T + coef_std[:, -1]), 0.0)
    return 0.5 * float(np.sum(coef_std * coef_std)) + float(np.sum(z * z))


def _svc_fold(
    X: np.ndarray, y: np.ndarray, te: np.ndarray, dtype: type, solver: str = "auto"
) -> tuple[float, float]:
    m = FastLinearSVC(dtype=dtype, solver=solver).fit(X[~te], y[~te])
    f = _svc_objective((X[~te] - m.mean_) / m.scale_, y[~te], m.coef_std_)
    return float(np.mean(m.predict(X[te]) == y[te])), f


def _svc_cpu(
    X: np.ndarray, y: np.ndarray, te: np.ndarray, solver: str
) -> tuple[float, float, float]:
    """CPU seconds of one fold-0 fit in this process (one BLAS thread), accuracy, objective."""
    t = time.process_time()
    acc, f = _svc_fold(X, y, te, np.float32, solver)
    return time.process_time() - t, acc, f


def _svc_data(
    args: argparse.Namespace, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Tiles of the study's size (9 Gaussian classes, near-separable like CNN features), and
    the test-fold masks of ``args.repeats`` repeats."""
    means = rng.normal(size=(N_CLASSES, N_FEATURES)) * 0.08
    y = rng.integers(0, N_CLASSES, size=N_TILES)
    X = (means[y] + rng.normal(size=(N_TILES, N_FEATURES))).astype(np.float64)
    a = plan(N_TILES, args.repeats)
    return X, y, [a[r] == k for r in range(args.repeats) for k in range(FOLDS)]


def bench_svc(args: argparse.Namespace, rng: np.random.Generator) -> list[str]:
    X, y, folds = _svc_data(args, rng)
    # Warm-up: loads the compiled dual solver from numba's cache here and in the workers
    # (320 x 100 training rows: 'auto' takes the dual there too).
    small = np.arange(400)
    Parallel(n_jobs=args.n_jobs, backend="loky")(
        delayed(_svc_fold)(X[small, :100], y[small], te[small], np.float32) for te in folds[:2]
    )
    t_fast, res = timed(
        Parallel(n_jobs=args.n_jobs, backend="loky"),
        (delayed(_svc_fold)(X, y, te, np.float32) for te in folds),
    )
    accs, objs = zip(*res, strict=True)
    full = t_fast / len(folds) * FULL_REPEATS * FOLDS
    # Baseline at its best configuration on the same cores: liblinear's dual solver (the same
    # algorithm as ours), LinearSVC(dual=True), on the same folds with the same n_jobs.
    t_base, base = timed(
        Parallel(n_jobs=args.n_jobs, backend="loky"),
        (delayed(_liblinear_fold)(X, y, te) for te in folds),
    )
    base_full = t_base / len(folds) * FULL_REPEATS * FOLDS
    acc_b, gap_b, iter_b = base[0]
    # CPU per fit, one thread, fold 0: the certified default and L-BFGS alone.
    te = folds[0]
    _svc_fold(X[small, :100], y[small], te[small], np.float32)
    cpu_d, acc_d, f_d = _svc_cpu(X, y, te, "auto")
    cpu_l, acc_l, f_l = _svc_cpu(X, y, te, "lbfgs")
    return [
        f"| Linear SVC (float32 dual CD, certified to a relative duality gap of 1e-6), 9 classes "
        f"x 50x5 folds (7180x2048) | {fmt(full)} (measured {fmt(t_fast)} for {len(folds)} fits, "
        f"n_jobs={args.n_jobs}; fold-0 accuracy {accs[0]:.4f}) | {fmt(base_full)} (LinearSVC("
        f"dual=True), measured {fmt(t_base)} for {len(folds)} fits, n_jobs={args.n_jobs}; fold-0 "
        f"accuracy {acc_b:.4f}, n_iter {iter_b}, relative duality gap {gap_b:.1e}) | "
        f"{base_full / full:.1f}x |",
        f"| Linear SVC solver, CPU per fit (1 thread, fold 0, both certified to gap 1e-6) | auto "
        f"(dual CD + L-BFGS polish) {cpu_d:.2f} s (accuracy {acc_d:.4f}) | L-BFGS {cpu_l:.2f} s "
        f"(accuracy {acc_l:.4f}, objective {100 * (f_l / f_d - 1):+.5f}% vs auto) | "
        f"{cpu_l / cpu_d:.1f}x |",
    ]


def bench_svc_handover(args: argparse.Namespace, rng: np.random.Generator) -> list[str]:
    """Where the float32 dual hands over to the float64 certificate (``dual_tol``): CPU per
    certified fit, one thread, folds 0 and 1, settings alternating in this process (best of 2
    rounds), and how far each setting's decision values are from the default's."""
    X, y, folds = _svc_data(args, rng)
    small = np.arange(400)
    _svc_fold(X[small, :100], y[small], folds[0][small], np.float32)  # compile / load cache
    settings = (1e-3, 6e-4, 3e-4, 1e-4)
    cpu: dict[tuple[float, int], float] = {}
    decision: dict[tuple[float, int], np.ndarray] = {}
    iters: dict[tuple[float, int], int] = {}
    for _ in range(2):
        for k in (0, 1):
            te = folds[k]
            for tol in settings:
                t = time.process_time()
                m = FastLinearSVC(dtype=np.float32, dual_tol=tol).fit(X[~te], y[~te])
                spent = time.process_time() - t
                cpu[tol, k] = min(cpu.get((tol, k), np.inf), spent)
                decision[tol, k], iters[tol, k] = m.decision_function(X[te]), m.n_iter_
    rows = []
    for tol in settings:
        diff = max(float(np.abs(decision[tol, k] - decision[3e-4, k]).max()) for k in (0, 1))
        rows.append(
            f"| SVC hand-over dual_tol={tol:g}, CPU per certified fit (1 thread, folds 0 / 1, "
            f"best of 2) | {cpu[tol, 0]:.2f} / {cpu[tol, 1]:.2f} s (dual epochs + polish "
            f"iterations {iters[tol, 0]} / {iters[tol, 1]}) | decision values within {diff:.1e} of "
            f"dual_tol=3e-4 | {cpu[3e-4, 0] / cpu[tol, 0]:.2f}x of the default's speed |"
        )
    return rows


SVC_SHAPES = ((216, 1280), (216, 2048), (2000, 512), (3000, 1280), (7180, 384))


def bench_svc_shapes(args: argparse.Namespace, rng: np.random.Generator) -> list[str]:
    """crc-tissue's solver choice: the certified liblinear fit against histobench's own solvers
    (``solver="auto"``), CPU of one fold-0 fit each (one thread, float32 like crc-tissue), on
    tiles of several shapes: the demo's (216 tiles), and CRC-VAL-HE-7K's 7,180 tiles embedded
    at 384 features (a ViT-S). Non-negative features with weak class means, 9 classes."""
    small = np.arange(200)
    rows = []
    for n, p in SVC_SHAPES:
        means = rng.normal(size=(N_CLASSES, p)) * 0.15
        y = rng.integers(0, N_CLASSES, size=n)
        X = np.abs(means[y] + rng.normal(size=(n, p)))
        te = plan(n, 1)[0] == 0
        _svc_fold(X[small, :50], y[small], te[small], np.float32)  # compile / load the cache
        fits = {}
        for solver in ("liblinear", "auto"):
            t = time.process_time()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                m = FastLinearSVC(dtype=np.float32, solver=solver, max_iter=2000)
                m.fit(X[~te], y[~te])
            fits[solver] = (time.process_time() - t, m, m.decision_function(X[te]))
        (t_l, m_l, d_l), (t_a, m_a, d_a) = fits["liblinear"], fits["auto"]
        agree = float(np.mean(d_l.argmax(axis=1) == d_a.argmax(axis=1)))
        rows.append(
            f"| crc-tissue solver, {int((~te).sum()):,} training tiles x {p:,} features, CPU per "
            f"certified fit (1 thread) | auto: {m_a.solver_} {t_a:.2f} s ({m_a.n_iter_} "
            f"iterations) | liblinear: {m_l.solver_} {t_l:.2f} s ({m_l.n_iter_} iterations); "
            f"decision values within {np.abs(d_l - d_a).max():.1e}, predictions agree "
            f"{agree:.1%} | {t_l / t_a:.1f}x |"
        )
    return rows


def bench_blas_threads(args: argparse.Namespace, rng: np.random.Generator) -> list[str]:
    """Fold fits in threads with a share of the cores' BLAS threads each (what crc-tissue and
    the SVR engine do) against every thread's BLAS using every core (what they did): wall-clock
    of crc-tissue's evaluation at the demo's size (216 tiles x 1,280, 5 x 5) and of the SVR
    engine (344 x 2,048, 200 genes, 2 x 5), n_jobs = 2, best of 3 alternating rounds. This
    script runs with one BLAS thread by default; "unlimited" restores one per core."""
    import contextlib

    from threadpoolctl import threadpool_limits

    from histobench.benchmark.splits import make_plan
    from histobench.plugins.specs import Dataset, Item
    from histobench.tasks import crc_tissue
    from histobench.tasks.estimators import _threads, svr

    labels = [f"C{i % N_CLASSES}" for i in range(216)]
    items = [Item(f"{lab}/{i}.png", path=None, label=lab) for i, lab in enumerate(labels)]  # type: ignore[arg-type]
    task = crc_tissue.CrcTissueTask(crc_tissue.CrcTissueOptions(n_jobs=2))
    units = task.units(Dataset("d", "tiles", items), items)
    tile_plan = make_plan(units.ids, units.strata, units.groups, 5, 5, seed=0)
    Xc = np.abs(rng.normal(size=(216, N_CLASSES)) @ rng.normal(size=(N_CLASSES, 1280)) * 0.3)
    Xc += np.abs(rng.normal(size=(216, 1280))) + np.eye(N_CLASSES)[units.strata] @ np.abs(
        rng.normal(size=(N_CLASSES, 1280))
    )
    Xs, Ys = patient_features(rng), rng.normal(size=(N_PATIENTS, 200))
    patient_plan = plan(N_PATIENTS, 2)
    workloads = {
        "crc-tissue evaluation, 216 tiles x 1,280, 5 x 5": lambda: task.evaluate(
            Xc, units, tile_plan
        ),
        "SVR engine, 344 x 2,048, 200 genes, 2 x 5": lambda: svr.svr_cross_val_predict(
            Xs, Ys, patient_plan, n_jobs=2
        ),
    }
    share = _threads.share_cores_between
    rows = []
    for name, work in workloads.items():
        best = {"shared": np.inf, "unlimited": np.inf}
        for _ in range(3):
            for mode in best:
                replace = share if mode == "shared" else lambda n: contextlib.nullcontext()
                crc_tissue.share_cores_between = _threads.share_cores_between = replace  # type: ignore[assignment]
                with threadpool_limits(limits=os.cpu_count(), user_api="blas"):
                    t = time.perf_counter()
                    work()
                    best[mode] = min(best[mode], time.perf_counter() - t)
        crc_tissue.share_cores_between = _threads.share_cores_between = share  # type: ignore[assignment]
        rows.append(
            f"| {name}, n_jobs = 2, wall-clock (best of 3) | {best['shared']:.2f} s "
            f"(cores // n_jobs BLAS threads per fit) | {best['unlimited']:.2f} s (one BLAS "
            f"thread per core in every fit) | {best['unlimited'] / best['shared']:.2f}x |"
        )
    return rows


def _liblinear_fold(X: np.ndarray, y: np.ndarray, te: np.ndarray) -> tuple[float, float, int]:
    """LinearSVC(dual=True) on the standardised training rows: accuracy, its worst relative
    duality gap (the certificate FastLinearSVC stops on), iterations."""
    sc = StandardScaler().fit(X[~te])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        svc = LinearSVC(C=1.0, dual=True).fit(sc.transform(X[~te]), y[~te])
    acc = float(np.mean(svc.predict(sc.transform(X[te])) == y[te]))
    Xs = sc.transform(X[~te])
    Xa = np.hstack([Xs, np.ones((Xs.shape[0], 1))])
    Y = np.where(y[~te][:, None] == svc.classes_[None, :], 1.0, -1.0)
    W = np.vstack([svc.coef_.T, svc.intercept_[None, :]])
    f, _, gap = fun_grad_gap(Xa, Y, W, 1.0)
    return acc, float(np.max(gap / f)), int(svc.n_iter_)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--repeats", type=int, default=1, help="repeats measured (full grid: 50)")
    ap.add_argument("--n-jobs", type=int, default=2)
    ap.add_argument("--lasso-genes", type=int, default=1, help="LASSO genes measured (of 9)")
    ap.add_argument(
        "--only", default="svr,lasso,glmnet,svc", help="also: svc-handover, svc-shapes, threads"
    )
    args = ap.parse_args(argv)
    parts = set(args.only.split(","))
    rng = np.random.default_rng(0)
    print("## Estimators (benchmarks/bench_estimators.py)\n")
    print(f"Machine load (uptime): {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f}\n")
    print(
        f"Generated data of the study's size; full 50x5 grid **extrapolated** from {args.repeats} "
        f"measured repeat(s); baselines timed on a subset in the same run. "
        f"CPU cores: {os.cpu_count()}, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}.\n"
    )
    print("| workload | histobench | naive baseline | speed-up |")
    print("| --- | --- | --- | --- |")
    benches = (
        ("svr", bench_svr),
        ("lasso", bench_lasso),
        ("glmnet", bench_glmnet_fortran),
        ("svc", bench_svc),
        ("svc-handover", bench_svc_handover),
        ("svc-shapes", bench_svc_shapes),
        ("threads", bench_blas_threads),
    )
    for name, fn in benches:
        if name in parts:
            for row in fn(args, rng):
                print(row, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
