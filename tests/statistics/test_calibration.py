"""Under a true null the default test must reject at about its nominal rate."""

from __future__ import annotations

import numpy as np

from histobench.statistics import corrected_resampled_ttest, null_calibration
from histobench.statistics.calibration import simulate_null_fold_scores


def test_corrected_test_is_calibrated_and_naive_is_not() -> None:
    res = null_calibration(n_draws=1000, repeats=10, folds=5, n=100, seed=0)
    assert 0.03 <= res.corrected_rejection_rate <= 0.07
    # The naive t-test ignores the overlap between repeats and rejects many times too often.
    assert res.naive_rejection_rate > 0.25
    assert res.naive_rejection_rate > 4 * res.corrected_rejection_rate


def test_simulated_repeats_are_correlated_like_real_cv() -> None:
    # Repeat means of the fold differences vary much less than independent repeats would: the
    # simulation reuses the items across repeats, which is what makes the naive test liberal.
    rng = np.random.default_rng(1)
    within, between = [], []
    for _ in range(200):
        a, b = simulate_null_fold_scores(rng, repeats=10, folds=5, n=100)
        d = a - b
        within.append(d.var(ddof=1))
        between.append(d.mean(axis=1).var(ddof=1))
    # Independent folds would give between ≈ within / 5 on average; shared items give far less.
    assert np.mean(between) < 0.5 * np.mean(within) / 5


def test_simulation_is_seeded_and_consistent_with_the_test_function() -> None:
    a, b = simulate_null_fold_scores(np.random.default_rng(3), repeats=4, folds=5, n=50)
    a2, b2 = simulate_null_fold_scores(np.random.default_rng(3), repeats=4, folds=5, n=50)
    assert np.array_equal(a, a2) and np.array_equal(b, b2)
    assert a.shape == (4, 5) and np.all((a >= 0) & (a <= 1))
    # null_calibration's vectorised rate uses the same formula as corrected_resampled_ttest
    r = corrected_resampled_ttest(a, b, n_train=40, n_test=10)
    assert r.df == 19
