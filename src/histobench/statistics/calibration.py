"""Null calibration: does a paired test reject at its nominal rate when nothing differs?

The simulation is a miniature of a real benchmark, not a model of its output: each draw samples
a fresh data set of ``n`` items from one population, gives two extractors features that carry the
same class signal plus their own noise (so neither is better in expectation, but they disagree on
individual items), and runs the same R×K stratified cross-validation plan for both, training a
nearest-centroid classifier on every training fold. Repeats reuse the same items, so fold scores
are correlated across repeats exactly as in a real run; nothing about that correlation is
written in by hand.

Why the corrected test is close to nominal here and the naive one is not: the naive t-test
divides the spread of the R·K fold differences by R·K as if they were independent; they are
not, because every repeat re-splits the same items. The Nadeau–Bengio term n_test/n_train
stands in for that correlation. It is a heuristic, not an exact variance, so its size depends
on the learner and the data. Measured with the defaults (R=10, K=5, n=100): 4.2 % over 5,000
draws (seed 11) and 5.2 % / 3.9 % / 3.2 % over 1,000 draws with seeds 0 / 1 / 2, i.e. nominal to
slightly conservative, while the naive test rejects 54-59 %. With a single repeat (plain 5-fold
CV) the correction is conservative (1.9 %, naive 7.4 %). ``null_calibration`` exposes the knobs
(n, features, signal, shared noise) so other regimes can be checked.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import stats

from histobench.statistics.results import StatisticsError, _jsonable


@dataclass(frozen=True)
class CalibrationResult:
    n_draws: int
    repeats: int
    folds: int
    n: int
    alpha: float
    corrected_rejection_rate: float
    naive_rejection_rate: float
    # Binomial standard error of a rejection rate of exactly alpha over n_draws draws.
    monte_carlo_se: float

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(asdict(self))


def _stratified_folds(y: np.ndarray, repeats: int, folds: int, rng: np.random.Generator):
    """(R, n) fold index per item: within each class, a random order dealt round-robin."""
    out = np.empty((repeats, y.size), dtype=np.int64)
    for r in range(repeats):
        offset = 0
        for c in (0, 1):
            idx = np.flatnonzero(y == c)
            perm = rng.permutation(idx)
            out[r, perm] = (np.arange(perm.size) + offset) % folds
            offset += perm.size  # continue dealing where the last class stopped: balanced folds
    return out


def _fold_accuracy(x: np.ndarray, y: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Accuracy on every test fold (rows of ``test``) of a nearest-centroid classifier trained
    on the complementary items; all folds at once with matrix products."""
    train = ~test
    w1 = (train & (y == 1)).astype(float)
    w0 = (train & (y == 0)).astype(float)
    m1 = (w1 @ x) / w1.sum(axis=1, keepdims=True)
    m0 = (w0 @ x) / w0.sum(axis=1, keepdims=True)
    # Nearer to m1 than to m0  <=>  2 x·(m1 − m0) > |m1|² − |m0|²
    disc = 2.0 * (m1 - m0) @ x.T - ((m1**2).sum(1) - (m0**2).sum(1))[:, None]
    correct = (disc > 0) == (y == 1)[None, :]
    return (correct & test).sum(axis=1) / test.sum(axis=1)


def simulate_null_fold_scores(
    rng: np.random.Generator,
    *,
    repeats: int,
    folds: int,
    n: int,
    n_features: int = 5,
    signal: float = 1.0,
    shared_noise: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """One draw: (R, K) fold accuracies of two equally good extractors on one sampled data set.

    Item i has class y_i, a shared nuisance s_i (what makes an item hard for any extractor) and
    per-extractor noise: x_A = signal·y + s + e_A, x_B = signal·y + s + e_B, e ~ N(0, I).
    """
    y = np.zeros(n, dtype=np.int64)
    y[rng.permutation(n)[: n // 2]] = 1
    mu = np.outer(y, np.full(n_features, signal / np.sqrt(n_features)))
    s = shared_noise * rng.standard_normal((n, n_features))
    xa = mu + s + rng.standard_normal((n, n_features))
    xb = mu + s + rng.standard_normal((n, n_features))
    fold = _stratified_folds(y, repeats, folds, rng)
    test = (fold[:, None, :] == np.arange(folds)[None, :, None]).reshape(repeats * folds, n)
    acc_a = _fold_accuracy(xa, y, test).reshape(repeats, folds)
    acc_b = _fold_accuracy(xb, y, test).reshape(repeats, folds)
    return acc_a, acc_b


def null_calibration(
    n_draws: int = 1000,
    repeats: int = 10,
    folds: int = 5,
    n: int = 100,
    seed: int = 0,
    *,
    alpha: float = 0.05,
    n_features: int = 5,
    signal: float = 1.0,
    shared_noise: float = 1.0,
) -> CalibrationResult:
    """Rejection rates at ``alpha`` of the corrected and the naive t-test under a true null.

    Each draw's folds are scored in a few matrix products (1,000 draws take well under a
    second); the tests are the formulas of ``corrected_resampled_ttest`` and
    ``naive_paired_ttest`` applied to all draws at once.
    """
    if n_draws < 1 or repeats < 1 or folds < 2 or n < 2 * folds:
        raise StatisticsError(
            "null_calibration needs n_draws >= 1, repeats >= 1, folds >= 2 and n >= 2*folds"
        )
    rng = np.random.default_rng(seed)
    j = repeats * folds
    diffs = np.empty((n_draws, j))
    for i in range(n_draws):
        a, b = simulate_null_fold_scores(
            rng, repeats=repeats, folds=folds, n=n, n_features=n_features, signal=signal,
            shared_noise=shared_noise,
        )  # fmt: skip
        diffs[i] = (a - b).ravel()
    n_test = n / folds
    n_train = n - n_test
    mean = diffs.mean(axis=1)
    var = diffs.var(axis=1, ddof=1)
    crit = stats.t.ppf(1 - alpha / 2, j - 1)

    def rate(scale: float) -> float:
        with np.errstate(divide="ignore", invalid="ignore"):
            t = mean / np.sqrt(scale * var)
        # var = 0 with mean = 0 is no evidence (p = 1), matching _t_test.
        t = np.where(var == 0, np.where(mean == 0, 0.0, np.inf), t)
        return float(np.mean(np.abs(t) > crit))

    return CalibrationResult(
        n_draws=n_draws,
        repeats=repeats,
        folds=folds,
        n=n,
        alpha=alpha,
        corrected_rejection_rate=rate(1.0 / j + n_test / n_train),
        naive_rejection_rate=rate(1.0 / j),
        monte_carlo_se=float(np.sqrt(alpha * (1 - alpha) / n_draws)),
    )
