"""Speed of the paired statistics, each beside its naive baseline measured in the same run.

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_statistics.py

Prints a Markdown section for BENCHMARKS.md. Sizes follow the study: 344 LUAD patients, 7,180
CRC-VAL tiles, 907 genes, 50×5-fold CV.
"""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
from scipy import stats  # noqa: E402
from statsmodels.stats.multitest import multipletests  # noqa: E402

from histobench.statistics import (  # noqa: E402
    benjamini_hochberg,
    delong_test,
    holm,
    null_calibration,
    per_target_comparison,
    wilcoxon_signed_rank,
)


def best_of(fn: Callable[[], object], repeat: int = 5) -> float:
    """Best wall time of ``repeat`` calls, in seconds (the least disturbed by other load)."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def brute_force_delong(y: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    """Textbook DeLong: the m×n kernel matrix per extractor (the naive baseline)."""
    out = []
    for s in (a, b):
        pos, neg = s[y == 1], s[y == 0]
        psi = (pos[:, None] > neg[None, :]) + 0.5 * (pos[:, None] == neg[None, :])
        out.append((psi.mean(), psi.mean(axis=1), psi.mean(axis=0)))
    (a1, v10a, v01a), (a2, v10b, v01b) = out
    m, n = v10a.size, v01a.size
    s10, s01 = np.cov(v10a, v10b), np.cov(v01a, v01b)
    var = (s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / m + (s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]) / n
    return float((a1 - a2) / np.sqrt(var))


def main() -> None:
    rng = np.random.default_rng(0)
    rows: list[tuple[str, str, float, str, float]] = []

    for n in (344, 7180):
        y = (rng.random(n) < 0.3).astype(int)
        a, b = y + rng.normal(size=n), 0.8 * y + rng.normal(size=n)
        assert np.isclose(delong_test(y, a, b).statistic, brute_force_delong(y, a, b))
        reps = 3 if n > 1000 else 20
        rows.append((
            f"DeLong, N = {n}", "midrank (Sun & Xu)", best_of(lambda y=y, a=a, b=b: delong_test(y, a, b), reps),
            "kernel matrix O(m·n)", best_of(lambda y=y, a=a, b=b: brute_force_delong(y, a, b), reps),
        ))  # fmt: skip

    t, r, k = 907, 50, 5
    fa = rng.normal(0.3, 0.05, size=(t, r, k))
    fb = fa - rng.normal(0.005, 0.02, size=(t, r, k))
    rows.append((
        f"per-target corrected t + Holm/BH + sign, {t} genes × {r}×{k}",
        "per_target_comparison",
        best_of(lambda: per_target_comparison([str(i) for i in range(t)], fa, fb,
                                              n_train=275, n_test=69), 3),
        "scipy ttest_rel loop + statsmodels",
        best_of(lambda: multipletests([stats.ttest_rel(fa[i].ravel(), fb[i].ravel()).pvalue
                                       for i in range(t)], method="holm"), 3),
    ))  # fmt: skip

    ra, rb = fa.mean(axis=2), fb.mean(axis=2)
    rows.append((
        f"Wilcoxon over {r} repeats (+ Hodges-Lehmann CI)", "wilcoxon_signed_rank",
        best_of(lambda: wilcoxon_signed_rank(ra[0], rb[0]), 20),
        "scipy.stats.wilcoxon (no CI)", best_of(lambda: stats.wilcoxon(ra[0], rb[0]), 20),
    ))  # fmt: skip

    p = rng.uniform(size=t)
    rows.append((
        f"Holm + BH on {t} p-values", "holm + benjamini_hochberg",
        best_of(lambda: (holm(p), benjamini_hochberg(p)), 50),
        "statsmodels multipletests ×2",
        best_of(lambda: (multipletests(p, method="holm"), multipletests(p, method="fdr_bh")), 50),
    ))  # fmt: skip

    calib = best_of(lambda: null_calibration(n_draws=1000, seed=0), 1)
    res = null_calibration(n_draws=1000, seed=0)

    print("## Statistics (`benchmarks/bench_statistics.py`)\n")
    print(
        f"Python {platform.python_version()}, numpy {np.__version__}, OMP_NUM_THREADS="
        f"{os.environ['OMP_NUM_THREADS']}; best of several runs, shared 2-core machine.\n"
    )
    print("| case | histobench | time | baseline | time | speed-up |")
    print("|---|---|---:|---|---:|---:|")
    for case, ours, t_ours, base, t_base in rows:
        print(
            f"| {case} | {ours} | {t_ours * 1e3:.2f} ms | {base} | {t_base * 1e3:.2f} ms |"
            f" {t_base / t_ours:.1f}× |"
        )
    print(
        f"\nNull calibration, 1,000 draws of 10×5-fold CV on 100 items: {calib:.2f} s; rejection "
        f"at 0.05: corrected {res.corrected_rejection_rate:.3f}, naive "
        f"{res.naive_rejection_rate:.3f}."
    )


if __name__ == "__main__":
    main()
