"""The LUAD tasks end to end, beyond the estimators: alignment, skips, scoring, significance.

    python benchmarks/bench_luad.py [--repeats 1] [--genes 907] [--n-jobs 2]

``benchmarks/bench_estimators.py`` times the estimators themselves; this script times what the
task adds around them at the study's size (344 patients x 2,048 features x 907 genes, 50 x 5
folds): (1) scoring every gene's pooled and per-fold Pearson r with p-values, vectorised over
genes, beside the naive per-gene ``scipy.stats.pearsonr`` loop, both on the same predictions;
(2) ``LuadExpressionTask.evaluate`` beside a bare ``svr_cross_val_predict`` call on the same
data and folds (measured on ``--repeats`` repeats and extrapolated to 50; the output says so).
Prints a Markdown section.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("HISTOBENCH_QUIET", "1")

import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

from histobench.benchmark.splits import make_plan  # noqa: E402
from histobench.plugins.labels import InMemoryLabels, LabelMatrix  # noqa: E402
from histobench.plugins.specs import Dataset, Item  # noqa: E402
from histobench.tasks.estimators.svr import svr_cross_val_predict  # noqa: E402
from histobench.tasks.luad import (  # noqa: E402
    LuadExpressionOptions,
    LuadExpressionTask,
    masked_pearson,
)

FULL_REPEATS, FOLDS, N_PATIENTS, N_FEATURES = 50, 5, 344, 2048


def fmt(seconds: float) -> str:
    return f"{seconds:,.2f} s" if seconds < 600 else f"{seconds / 60:,.1f} min"


def naive_scores(Y: np.ndarray, pred: np.ndarray, assignments: np.ndarray) -> np.ndarray:
    """Per gene, per repeat, per fold: scipy.stats.pearsonr in Python loops."""
    R, _, G = pred.shape
    out = np.empty((R, FOLDS + 1, G))
    for g in range(G):
        for r in range(R):
            out[r, 0, g] = stats.pearsonr(Y[:, g], pred[r, :, g]).statistic
            for k in range(FOLDS):
                test = assignments[r] == k
                out[r, k + 1, g] = stats.pearsonr(Y[test, g], pred[r, test, g]).statistic
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=1, help="repeats timed for evaluate()")
    parser.add_argument("--genes", type=int, default=907)
    parser.add_argument("--n-jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    G = args.genes
    X = rng.gamma(2.0, 1.0, size=(N_PATIENTS, N_FEATURES))
    Y = np.log2(1 + rng.lognormal(2, 1.5, size=(N_PATIENTS, G)))
    patients = [f"TCGA-BM-{i:04d}" for i in range(N_PATIENTS)]
    lines = ["## LUAD tasks (benchmarks/bench_luad.py)", ""]
    lines.append(
        f"{N_PATIENTS} patients x {N_FEATURES} features x {G} genes; {os.cpu_count()} CPU "
        f"cores, n_jobs={args.n_jobs}."
    )
    lines += [
        "",
        "| workload | histobench | naive baseline | speed-up |",
        "| --- | --- | --- | --- |",
    ]

    # (1) Scoring at the full 50 x 5 grid on synthetic predictions.
    plan = make_plan(patients, np.zeros(N_PATIENTS, int), patients, FULL_REPEATS, FOLDS, 0)
    pred = Y[None] + rng.normal(0, 1, size=(FULL_REPEATS, N_PATIENTS, G))
    t0 = time.perf_counter()
    for r in range(FULL_REPEATS):
        masked_pearson(Y, pred[r], "greater")
    for r, _k, _, test in plan.iter_folds():
        masked_pearson(Y[test], pred[r, test], "greater")
    fast = time.perf_counter() - t0
    sub = max(1, G // 20)  # the naive loop on a subset of genes, extrapolated
    t0 = time.perf_counter()
    naive_scores(Y[:, :sub], pred[:, :, :sub], plan.assignments)
    naive = (time.perf_counter() - t0) * G / sub
    lines.append(
        f"| scoring: pooled + per-fold r and p, {G} genes x 50 x 5 | {fmt(fast)} | "
        f"{fmt(naive)} (scipy pearsonr loop, {sub} genes timed, extrapolated) | "
        f"{naive / fast:,.0f}x |"
    )

    # (2) evaluate() vs the bare estimator on the same folds (R repeats, extrapolated to 50).
    R = args.repeats
    small = make_plan(patients, np.zeros(N_PATIENTS, int), patients, R, FOLDS, 0)
    items = [Item(p, Path(p), patient=p) for p in patients]
    genes = [f"G{j}" for j in range(G)]
    matrix = LabelMatrix("expression", Path("bench"), patients, genes, Y)
    ds = Dataset("bench", "cohort", items, labels=InMemoryLabels(expression_matrix=matrix))
    task = LuadExpressionTask(LuadExpressionOptions(n_jobs=args.n_jobs))
    t0 = time.perf_counter()
    units = task.units(ds, items)
    result = task.evaluate(X, units, small)
    task_s = (time.perf_counter() - t0) * FULL_REPEATS / R
    t0 = time.perf_counter()
    svr_cross_val_predict(X, Y, small.assignments.astype(np.int64), n_jobs=args.n_jobs)
    bare_s = (time.perf_counter() - t0) * FULL_REPEATS / R
    assert len(result.per_target) == G
    lines.append(
        f"| luad-expression evaluate(), {G} genes x 50 x 5 (from {R} repeat(s)) | "
        f"{fmt(task_s)} | {fmt(bare_s)} (bare svr_cross_val_predict) | task overhead "
        f"{100 * (task_s / bare_s - 1):+.1f} % |"
    )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
