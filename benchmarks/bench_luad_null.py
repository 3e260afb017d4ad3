"""Null calibration of the LUAD tasks' default paired test at the LUAD shape.

    python benchmarks/bench_luad_null.py --task expression --genes 50 --draws 10
    python benchmarks/bench_luad_null.py --task mutation --genes 9 --features 256 --repeats 10

Each draw makes labels (mutation status at LUAD-like prevalences, or log expression) and two
"extractors" whose features are independent of the labels and of each other, evaluates both
with the task on one shared split plan, and tests A against B. Candidate scorings, all on the
same two runs:

* fold-mean (the default): a repeat's score is the mean of its fold scores; corrected
  repeated-CV t-test (Nadeau & Bengio) on the R x K fold scores.
* repeat-mean: the same displayed score; the corrected t-test on the R per-repeat means.
* pooled: a repeat's score is one r / AUC of its pooled out-of-fold predictions; the same
  corrected t-test on the R per-repeat scores (the test on the displayed quantity).
* naive: plain paired t-test on the R x K fold scores (no correction; shows why it exists).

Reports, per candidate, the rejection rate at alpha = 0.05 (two-sided) per gene and for the
headline (mean over genes), with a Clopper-Pearson 95 % interval, and the mean displayed score
of a null extractor (chance: r = 0, AUC = 0.5). Results are appended to ``--out`` (JSON) after
every draw, so a long run can be stopped and summarised with ``--summary``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
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
CANDIDATES = ("fold-mean", "repeat-mean", "pooled", "naive")


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


def pooled(result: TaskResult) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per gene and headline per-repeat pooled scores."""
    per_gene = {
        g: np.array(t.extra["pooled_scores"], dtype=float) for g, t in result.per_target.items()
    }
    return per_gene, np.nanmean(np.stack(list(per_gene.values())), axis=0)


def candidate_tests(a: TaskResult, b: TaskResult, n_train: float, n_test: float) -> dict:
    """p-values of each candidate, per gene and for the headline."""
    pa, ha = pooled(a)
    pb, hb = pooled(b)

    def p_value(kind: str, fa: np.ndarray, fb: np.ndarray, ra: np.ndarray, rb: np.ndarray):
        if kind == "fold-mean":
            res = corrected_resampled_ttest(fa, fb, n_train, n_test)
        elif kind == "repeat-mean":
            ma, mb = np.nanmean(fa, axis=1), np.nanmean(fb, axis=1)
            res = corrected_resampled_ttest(ma, mb, n_train, n_test)
        elif kind == "pooled":
            res = corrected_resampled_ttest(ra, rb, n_train, n_test)
        else:
            res = naive_paired_ttest(fa, fb)
        return float(res.p_value) if np.isfinite(res.p_value) else 1.0

    out: dict[str, Any] = {}
    for kind in CANDIDATES:
        genes = [
            p_value(kind, a.per_target[g].fold_scores, b.per_target[g].fold_scores, pa[g], pb[g])
            for g in a.per_target
            if g in b.per_target
        ]
        head = p_value(kind, a.fold_scores, b.fold_scores, ha, hb)
        out[kind] = {"genes": genes, "headline": head}  # p-values
    return out


def one_draw(args: argparse.Namespace, draw: int) -> dict[str, Any]:
    rng = np.random.default_rng([args.seed, draw])
    kind = "expression" if args.task == "expression" else "mutations"
    data = dataset(kind, draw_labels(rng, args.task, args.patients, args.genes))
    results = []
    started = time.perf_counter()
    for _ in range(2):  # two extractors, independent of the labels and of each other
        X = rng.normal(size=(args.patients, args.features))
        task = make_task(args.task, args.n_jobs)
        units = task.units(data, data.items)
        plan = make_plan(units.ids, units.strata, units.groups, args.repeats, args.folds, draw)
        results.append(task.evaluate(X, units, plan))
    n_train, n_test = plan.mean_train_test_sizes()
    a, b = results
    return {
        "draw": draw,
        "seconds": round(time.perf_counter() - started, 1),
        "tests": candidate_tests(a, b, n_train, n_test),
        "shown_fold_mean": float(np.mean(a.repeat_scores)),
        "shown_pooled": float(np.nanmean(pooled(a)[1])),
    }


def rejected(p: float | bool) -> bool:
    """A p-value below alpha (records of earlier versions stored the decision itself)."""
    return bool(p) if isinstance(p, bool) else p < ALPHA


def rate(p_values: list[float]) -> str:
    k, n = sum(rejected(p) for p in p_values), len(p_values)
    if n == 0:
        return "–"
    ci = stats.binomtest(k, n).proportion_ci(0.95, method="exact")
    return f"{k / n:.1%} ({k}/{n}; 95 % CI {ci.low:.1%}–{ci.high:.1%})"


def summary(record: dict[str, Any]) -> str:
    draws = record["draws"]
    cfg = record["config"]
    chance = 0.0 if cfg["task"] == "expression" else 0.5
    lines = [
        f"luad-{cfg['task']} null: {cfg['patients']} patients × {cfg['features']} features, "
        f"{cfg['genes']} genes, {cfg['repeats']} × {cfg['folds']} plan, {len(draws)} draws "
        f"(two null extractors each), alpha = {ALPHA} two-sided; "
        f"median {np.median([d['seconds'] for d in draws]):.0f} s per draw",
        "",
        "| scoring (test) | rejection per gene | rejection of the headline |",
        "|---|---|---|",
    ]
    names = {
        "fold-mean": "fold-mean, corrected t on R×K fold scores (default)",
        "repeat-mean": "fold-mean, corrected t on the R repeat means",
        "pooled": "pooled per repeat, corrected t on R repeat scores",
        "naive": "fold scores, naive paired t (no correction)",
    }
    for kind in [c for c in CANDIDATES if c in draws[0]["tests"]]:
        genes = [h for d in draws for h in d["tests"][kind]["genes"]]
        head = [d["tests"][kind]["headline"] for d in draws]
        lines.append(f"| {names[kind]} | {rate(genes)} | {rate(head)} |")
    fm = np.mean([d["shown_fold_mean"] for d in draws])
    po = np.mean([d["shown_pooled"] for d in draws])
    lines += ["", f"Mean displayed score of a null extractor (chance {chance}): fold-mean "
              f"{fm:.4f}, pooled {po:.4f}."]  # fmt: skip
    return "\n".join(lines)


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
    parser.add_argument("--out", type=Path, default=Path("luad_null.json"))
    parser.add_argument("--summary", action="store_true", help="summarise --out and exit")
    args = parser.parse_args()
    if args.summary:
        print(summary(json.loads(args.out.read_text())))
        return
    config = {k: v for k, v in vars(args).items() if k not in ("out", "summary")}
    record: dict[str, Any] = {"config": config, "draws": []}
    if args.out.is_file():
        previous = json.loads(args.out.read_text())
        if previous.get("config") == config:
            record = previous  # resume
    for draw in range(len(record["draws"]), args.draws):
        record["draws"].append(one_draw(args, draw))
        args.out.write_text(json.dumps(record))
        print(f"draw {draw + 1}/{args.draws}: {record['draws'][-1]['seconds']} s", flush=True)
    print(os.popen("uptime").read().strip())
    print(summary(record))


if __name__ == "__main__":
    main()
