"""Split plans: independence of repeats and time to draw, against scikit-learn's splitters.

    python benchmarks/bench_splits.py [--repeats 50] [--folds 5]

Independence: on 30 patients with 1–10 tiles of 3 uniformly random classes, the share of
patient pairs that are in the same fold in all repeats or in none (independent draws: about
0.8**50 ≈ 1e-5 per pair). Baseline: ``StratifiedGroupKFold(shuffle=True)`` with one seed per
repeat, as histobench used before. Time: drawing a whole plan, for data set shapes the tasks
see, against the scikit-learn splitter that would draw the same kind of plan, same process,
same core. Prints Markdown rows for BENCHMARKS.md and the load average.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from histobench.benchmark.splits import make_plan


def patients(seed: int, n_patients: int = 30, n_classes: int = 3):
    rng = np.random.default_rng(seed)
    ids, strata, groups = [], [], []
    for p in range(n_patients):
        for i in range(int(rng.integers(1, 11))):
            ids.append(f"p{p:02d}-{i}")
            strata.append(int(rng.integers(n_classes)))
            groups.append(f"p{p:02d}")
    return ids, np.array(strata), groups


def sklearn_plan(strata: np.ndarray, groups: list[str], repeats: int, folds: int) -> np.ndarray:
    n = len(strata)
    grouped = len(set(groups)) < n
    out = np.empty((repeats, n), dtype=np.int16)
    for r in range(repeats):
        rs = int(np.random.SeedSequence([0, r]).generate_state(1)[0])
        if grouped:
            splits = StratifiedGroupKFold(folds, shuffle=True, random_state=rs).split(
                np.zeros(n), strata, groups
            )
        else:
            splits = StratifiedKFold(folds, shuffle=True, random_state=rs).split(
                np.zeros(n), strata
            )
        for k, (_, test) in enumerate(splits):
            out[r, test] = k
    return out


def always_or_never(assignments: np.ndarray, groups: list[str]) -> float:
    g = np.array(groups)
    names = sorted(set(groups))
    fold = np.array([[row[g == p][0] for p in names] for row in assignments])
    together = (fold[:, :, None] == fold[:, None, :]).sum(axis=0)
    pairs = together[np.triu_indices(len(names), 1)]
    return float(np.mean((pairs == 0) | (pairs == len(assignments))))


def timed(fn, *args, **kwargs) -> float:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()
    R, K = args.repeats, args.folds
    print(f"load average before: {os.getloadavg()}")
    print("\n| data (seed) | histobench: always/never together | StratifiedGroupKFold |")
    print("| --- | ---: | ---: |")
    for seed in range(5):
        ids, strata, groups = patients(seed)
        ours = make_plan(ids, strata, groups, R, K, seed=seed).assignments
        theirs = sklearn_plan(strata, groups, R, K)
        print(
            f"| 30 patients, {len(ids)} tiles ({seed}) | {always_or_never(ours, groups):.2%} |"
            f" {always_or_never(theirs, groups):.2%} |"
        )
    rng = np.random.default_rng(0)
    shapes: list[tuple[str, int, int, int | None]] = [
        ("LUAD: 344 patients, one unit each", 344, 1, None)
    ]
    shapes += [("CRC-VAL-HE-7K: 7,180 tiles, no patients", 7180, 9, None)]
    shapes += [(f"7,180 tiles of {p} patients", 7180, 9, p) for p in (50, 500)]
    print(f"\n| plan ({R} × {K}) | histobench s | scikit-learn s |")
    print("| --- | ---: | ---: |")
    for label, n, n_classes, n_patients in shapes:
        strata = rng.integers(0, n_classes, n)
        ids = [f"u{i}" for i in range(n)]
        groups = ids if n_patients is None else [f"p{rng.integers(n_patients)}" for _ in ids]
        ours_s = timed(make_plan, ids, strata, groups, R, K, seed=0)
        theirs_s = timed(sklearn_plan, strata, groups, R, K)
        print(f"| {label} | {ours_s:.2f} | {theirs_s:.2f} |")
    print(f"\nload average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
