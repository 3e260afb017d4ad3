"""Null calibration of the LUAD tasks' default paired test at the LUAD shape.

    python benchmarks/bench_luad_null.py --task expression --genes 50 --draws 10 --raw DIR
    python benchmarks/bench_luad_null.py --task mutation --genes 9 --repeats 10 --raw DIR

Each draw makes labels (mutation status at LUAD-like prevalences, or log expression) and two
"extractors" whose features are independent of the labels and of each other, evaluates both
with the task on one shared split plan, and tests A against B. Candidate tests, all on the
same two runs:

* jackknife (the default of both LUAD tasks): the displayed score is the mean of the fold
  scores; the unit (patient) jackknife of its difference from the stored out-of-fold
  predictions, variance doubled for each patient's training role (``statistics/jackknife.py``).
* fold-mean: the same quantity; corrected repeated-CV t-test (Nadeau & Bengio) on the R x K
  fold scores.
* pooled: a repeat's score is one r / AUC of its pooled out-of-fold predictions; the same
  corrected t-test on the R per-repeat scores.
* naive: plain paired t-test on the R x K fold scores (no correction; shows why it exists).

Reports, per candidate, the rejection rate at alpha = 0.05 (two-sided) per gene and for the
headline (mean over genes), with a Clopper-Pearson 95 % interval, and the mean displayed score
of a null extractor (chance: r = 0, AUC = 0.5). Each draw's labels, plan, fold scores and
out-of-fold predictions are kept in ``--raw`` (one .npz per draw), so a long run resumes where
it stopped and ``--summary`` recomputes every test from them.
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("HISTOBENCH_QUIET", "1")

import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402

from histobench.benchmark.splits import make_plan  # noqa: E402
from histobench.plugins.labels import InMemoryLabels, LabelMatrix  # noqa: E402
from histobench.plugins.specs import Dataset, Item, TaskResult  # noqa: E402
from histobench.statistics import corrected_resampled_ttest, naive_paired_ttest  # noqa: E402
from histobench.statistics.jackknife import unit_jackknife_test  # noqa: E402
from histobench.tasks.luad import (  # noqa: E402
    LuadExpressionOptions,
    LuadExpressionTask,
    LuadMutationOptions,
    LuadMutationTask,
)

# Mutation frequencies of frequently mutated LUAD genes (TCGA-LUAD, rounded), recycled for
# longer gene lists with a little jitter.
PREVALENCES = [0.46, 0.30, 0.33, 0.17, 0.14, 0.17, 0.11, 0.08, 0.07]
ALPHA = 0.05
CANDIDATES = ("jackknife", "fold-mean", "pooled", "naive")


def draw_labels(rng: np.random.Generator, task: str, n: int, genes: int) -> np.ndarray:
    if task == "expression":
        return np.log2(rng.lognormal(3, 1.2, size=(n, genes)) + 1)
    prev = [PREVALENCES[j % len(PREVALENCES)] * (1 + 0.1 * (j // 9)) for j in range(genes)]
    return (rng.random((n, genes)) < np.minimum(prev, 0.5)).astype(float)


def dataset(kind: str, values: np.ndarray) -> Dataset:
    patients = [f"TCGA-NL-{i:04d}" for i in range(values.shape[0])]
    genes = [f"G{j}" for j in range(values.shape[1])]
    items = [Item(p, Path(f"{p}.h5"), patient=p) for p in patients]
    matrix = LabelMatrix(kind, Path(kind), patients, genes, values)
    key = "mutation_matrix" if kind == "mutations" else "expression_matrix"
    return Dataset("null", "cohort", items, labels=InMemoryLabels(**{key: matrix}))


def make_task(task: str, n_jobs: int) -> LuadExpressionTask | LuadMutationTask:
    if task == "expression":
        return LuadExpressionTask(LuadExpressionOptions(n_jobs=n_jobs))
    return LuadMutationTask(LuadMutationOptions(n_jobs=n_jobs))


def one_draw(args: argparse.Namespace, draw: int) -> Path:
    """Evaluate two null extractors on one draw; keep what every candidate test needs (labels,
    plan, fold scores, out-of-fold predictions, pooled per-repeat scores) in ``--raw``."""
    path = args.raw / f"draw{draw:03d}.npz"
    if path.is_file():
        return path  # resume: the same seed gives the same draw
    rng = np.random.default_rng([args.seed, draw])
    kind = "expression" if args.task == "expression" else "mutations"
    data = dataset(kind, draw_labels(rng, args.task, args.patients, args.genes))
    results: list[TaskResult] = []
    started = time.perf_counter()
    for _ in range(2):  # two extractors, independent of the labels and of each other
        X = rng.normal(size=(args.patients, args.features))
        task = make_task(args.task, args.n_jobs)
        units = task.units(data, data.items)
        plan = make_plan(units.ids, units.strata, units.groups, args.repeats, args.folds, draw)
        results.append(task.evaluate(X, units, plan))
    a, b = results
    genes = [g for g in a.per_target if g in b.per_target]
    pa, pb = ({p.target: p for p in r.predictions} for r in results)

    def stack(result: TaskResult, what: str) -> np.ndarray:
        if what == "pooled":
            return np.array([result.per_target[g].extra["pooled_scores"] for g in genes], float)
        return np.stack([result.per_target[g].fold_scores for g in genes])

    args.raw.mkdir(parents=True, exist_ok=True)
    np.savez(
        path,
        genes=np.array(genes),
        assignments=plan.assignments,
        y=np.stack([pa[g].y_true for g in genes]),
        pred_a=np.stack([pa[g].y_pred for g in genes]),
        pred_b=np.stack([pb[g].y_pred for g in genes]),
        folds_a=stack(a, "folds"),
        folds_b=stack(b, "folds"),
        pooled_a=stack(a, "pooled"),
        pooled_b=stack(b, "pooled"),
        seconds=time.perf_counter() - started,
    )
    return path


def candidate_tests(raw: Any, metric: str) -> dict[str, Any]:
    """p-values of each candidate, per gene and for the headline (mean over genes)."""
    assign = raw["assignments"]
    n = assign.shape[1]
    n_test = n / (int(assign.max()) + 1)
    fa, fb, ra, rb = raw["folds_a"], raw["folds_b"], raw["pooled_a"], raw["pooled_b"]
    y, pa, pb = raw["y"], raw["pred_a"], raw["pred_b"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        head_a, head_b = np.nanmean(fa, axis=0), np.nanmean(fb, axis=0)
        pooled_head = np.nanmean(ra, axis=0), np.nanmean(rb, axis=0)

    def p_value(kind: str, g: int | None) -> float:
        sel = slice(None) if g is None else g
        if kind == "jackknife":
            res = unit_jackknife_test(y[sel], pa[sel], pb[sel], assign, metric)
        elif kind == "fold-mean":
            xa, xb = (head_a, head_b) if g is None else (fa[g], fb[g])
            res = corrected_resampled_ttest(xa, xb, n - n_test, n_test)
        elif kind == "pooled":
            xa, xb = pooled_head if g is None else (ra[g], rb[g])
            res = corrected_resampled_ttest(xa, xb, n - n_test, n_test)
        else:
            xa, xb = (head_a, head_b) if g is None else (fa[g], fb[g])
            res = naive_paired_ttest(xa, xb)
        return float(res.p_value) if np.isfinite(res.p_value) else 1.0

    return {
        kind: {"genes": [p_value(kind, g) for g in range(len(y))], "headline": p_value(kind, None)}
        for kind in CANDIDATES
    }


def shown_scores(raw: Any) -> tuple[float, float]:
    """Mean displayed score of extractor A: fold mean, and the pooled per-repeat score."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(np.nanmean(raw["folds_a"])), float(np.nanmean(raw["pooled_a"]))


def rejected(p: float | bool) -> bool:
    """A p-value below alpha (records of earlier versions stored the decision itself)."""
    return bool(p) if isinstance(p, bool) else p < ALPHA


def rate(p_values: list[float]) -> str:
    k, n = sum(rejected(p) for p in p_values), len(p_values)
    if n == 0:
        return "–"
    ci = stats.binomtest(k, n).proportion_ci(0.95, method="exact")
    return f"{k / n:.1%} ({k}/{n}; 95 % CI {ci.low:.1%}–{ci.high:.1%})"


def summary(args: argparse.Namespace, files: list[Path]) -> str:
    metric = "pearson_r" if args.task == "expression" else "auc"
    tests, shown, seconds = [], [], []
    for path in files:
        with np.load(path) as raw:
            tests.append(candidate_tests(raw, metric))
            shown.append(shown_scores(raw))
            seconds.append(float(raw["seconds"]))
    chance = 0.0 if args.task == "expression" else 0.5
    lines = [
        f"luad-{args.task} null: {args.patients} patients × {args.features} features, "
        f"{args.genes} genes, {args.repeats} × {args.folds} plan, {len(files)} draws "
        f"(two null extractors each), alpha = {ALPHA} two-sided; "
        f"median {np.median(seconds):.0f} s per draw",
        "",
        "| scoring (test) | rejection per gene | rejection of the headline |",
        "|---|---|---|",
    ]
    names = {
        "jackknife": "fold-mean, unit jackknife × 2 roles",
        "fold-mean": "fold-mean, corrected t on R×K fold scores",
        "pooled": "pooled per repeat, corrected t on R repeat scores",
        "naive": "fold scores, naive paired t (no correction)",
    }
    # The task's own default (its ``paired_test``: the jackknife or the corrected t).
    default = "jackknife" if make_task(args.task, 1).paired_test == "jackknife" else "fold-mean"
    names[default] += " (the task's default)"
    for kind in CANDIDATES:
        genes = [p for t in tests for p in t[kind]["genes"]]
        head = [t[kind]["headline"] for t in tests]
        lines.append(f"| {names[kind]} | {rate(genes)} | {rate(head)} |")
    fm, po = np.mean(shown, axis=0)
    lines += ["", f"Mean displayed score of a null extractor (chance {chance}): fold-mean "
              f"{fm:.4f}, pooled {po:.4f}."]  # fmt: skip
    return "\n".join(lines + ["", repeat_trend(files)])


def repeat_trend(files: list[Path]) -> str:
    """The corrected t on the fold scores of the first R' repeats of the same draws: whether
    its rejection rate and mean t^2 drift as repeats are added (its variance factor
    1 / (R'K) + n_test / n_train shrinks with R' while the repeats stay correlated)."""
    draws = []
    for path in files:
        with np.load(path) as raw:
            n = raw["assignments"].shape[1]
            n_test = n / (int(raw["assignments"].max()) + 1)
            draws.append((raw["folds_a"], raw["folds_b"], n - n_test, n_test))
    R = min(fa.shape[1] for fa, *_ in draws)
    parts = []
    for r in sorted({2, 5, R} & set(range(2, R + 1))):
        ps, t2 = [], []
        for fa, fb, n_train, n_test in draws:
            for g in range(fa.shape[0]):
                res = corrected_resampled_ttest(fa[g, :r], fb[g, :r], n_train, n_test)
                ps.append(float(res.p_value) if np.isfinite(res.p_value) else 1.0)
                if np.isfinite(res.statistic):
                    t2.append(float(res.statistic) ** 2)
        parts.append(f"first {r} repeats: {rate(ps)}, mean t² {np.mean(t2):.2f}")
    return "Corrected t on the fold scores by number of repeats (same draws): " + "; ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", choices=["expression", "mutation"], default="mutation")
    parser.add_argument("--patients", type=int, default=344)
    parser.add_argument("--features", type=int, default=2048)
    parser.add_argument("--genes", type=int, default=9)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--draws", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument(
        "--raw",
        type=Path,
        default=Path("luad_null_raw"),
        help="folder of one .npz per draw (resumed; one folder per configuration)",
    )
    parser.add_argument("--summary", action="store_true", help="summarise --raw and exit")
    args = parser.parse_args()
    if not args.summary:
        for draw in range(args.draws):
            path = one_draw(args, draw)
            with np.load(path) as raw:
                print(f"draw {draw + 1}/{args.draws}: {float(raw['seconds']):.0f} s", flush=True)
        print(os.popen("uptime").read().strip())
    files = sorted(args.raw.glob("draw*.npz"))[: args.draws]
    print(summary(args, files))


if __name__ == "__main__":
    main()
