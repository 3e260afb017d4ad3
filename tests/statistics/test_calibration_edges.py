"""The null simulation's parts against brute force, and ``null_calibration``'s bookkeeping
against the library's own tests (written after mutation testing of ``calibration.py``)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from histobench.statistics import StatisticsError, null_calibration
from histobench.statistics.calibration import (
    _fold_accuracy,
    _stratified_folds,
    simulate_null_fold_scores,
)
from histobench.statistics.cv_tests import corrected_resampled_ttest, naive_paired_ttest


def test_stratified_folds_deal_each_class_round_robin() -> None:
    y = np.array([0] * 13 + [1] * 8)
    rng = np.random.default_rng(0)
    folds = _stratified_folds(y, 6, 4, rng)
    assert folds.shape == (6, 21) and folds.dtype == np.int64
    assert set(np.unique(folds)) == {0, 1, 2, 3}
    for r in range(6):
        for c in (0, 1):
            counts = np.bincount(folds[r, y == c], minlength=4)
            assert counts.max() - counts.min() <= 1  # each class spread over the folds
        sizes = np.bincount(folds[r], minlength=4)
        assert sizes.max() - sizes.min() <= 1  # the second class continues the dealing
    assert len({folds[r].tobytes() for r in range(6)}) == 6  # every repeat re-splits


def _nearest_centroid_by_hand(x: np.ndarray, y: np.ndarray, test: np.ndarray) -> float:
    train = ~test
    m1, m0 = x[train & (y == 1)].mean(0), x[train & (y == 0)].mean(0)
    d1 = ((x[test] - m1) ** 2).sum(1)
    d0 = ((x[test] - m0) ** 2).sum(1)
    return float(np.mean((d1 < d0) == (y[test] == 1)))


@pytest.mark.parametrize("seed", [1, 2])
def test_fold_accuracy_equals_a_nearest_centroid_by_hand(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, d, k = 40, 3, 4
    y = (rng.permutation(n) < 17).astype(np.int64)
    x = rng.normal(size=(n, d)) + 0.7 * y[:, None]
    fold = _stratified_folds(y, 2, k, rng)
    test = (fold[:, None, :] == np.arange(k)[None, :, None]).reshape(2 * k, n)
    acc = _fold_accuracy(x, y, test)
    expected = [_nearest_centroid_by_hand(x, y, t) for t in test]
    np.testing.assert_allclose(acc, expected, atol=1e-12)
    assert acc.min() > 0.0 and acc.max() < 1.0  # neither trivially right nor wrong


def test_simulation_follows_its_stated_model() -> None:
    """x_A = signal y / sqrt(d) + s + e_A, x_B likewise with its own e_B, half the items in
    class 1, one stratified plan shared by both: replayed draw for draw from the same seed."""
    repeats, folds, n, d, signal, shared = 3, 4, 32, 6, 1.7, 0.6
    a, b = simulate_null_fold_scores(np.random.default_rng(9), repeats=repeats, folds=folds, n=n,
                                     n_features=d, signal=signal, shared_noise=shared)  # fmt: skip
    rng = np.random.default_rng(9)
    y = np.zeros(n, dtype=np.int64)
    y[rng.permutation(n)[: n // 2]] = 1
    s = shared * rng.standard_normal((n, d))
    xa = signal / np.sqrt(d) * y[:, None] + s + rng.standard_normal((n, d))
    xb = signal / np.sqrt(d) * y[:, None] + s + rng.standard_normal((n, d))
    fold = _stratified_folds(y, repeats, folds, rng)
    for r in range(repeats):
        for k in range(folds):
            test = fold[r] == k
            assert a[r, k] == pytest.approx(_nearest_centroid_by_hand(xa, y, test), abs=1e-12)
            assert b[r, k] == pytest.approx(_nearest_centroid_by_hand(xb, y, test), abs=1e-12)


def test_signal_strength_moves_the_accuracy() -> None:
    rng = np.random.default_rng(4)
    none = np.mean([simulate_null_fold_scores(rng, repeats=2, folds=5, n=60, signal=0.0)[0]
                    for _ in range(40)])  # fmt: skip
    strong = np.mean([simulate_null_fold_scores(rng, repeats=2, folds=5, n=60, signal=8.0,
                                                shared_noise=0.1)[0] for _ in range(10)])  # fmt: skip
    assert abs(none - 0.5) < 0.05 and strong > 0.98


@pytest.mark.parametrize(
    ("alpha", "repeats", "folds"), [(0.05, 3, 4), (0.3, 3, 4), (0.3, 1, 3), (0.5, 1, 3)]
)
def test_rates_are_the_library_tests_draw_by_draw(alpha: float, repeats: int, folds: int) -> None:
    """Each draw is rejected exactly when ``corrected_resampled_ttest`` / ``naive_paired_ttest``
    on its fold scores give p < alpha (same seed, same draws); with 3 fold scores the t
    distribution's degrees of freedom matter."""
    draws, n = 30, 12 * folds
    res = null_calibration(draws, repeats, folds, n, seed=5, alpha=alpha, n_features=2,
                           signal=0.8, shared_noise=0.5)  # fmt: skip
    rng = np.random.default_rng(5)
    corrected = naive = 0
    for _ in range(draws):
        a, b = simulate_null_fold_scores(rng, repeats=repeats, folds=folds, n=n, n_features=2,
                                         signal=0.8, shared_noise=0.5)  # fmt: skip
        corrected += (
            corrected_resampled_ttest(a, b, n_train=n - n / folds, n_test=n / folds).p_value < alpha
        )
        naive += naive_paired_ttest(a, b).p_value < alpha
    assert res.corrected_rejection_rate == pytest.approx(corrected / draws, abs=1e-12)
    assert res.naive_rejection_rate == pytest.approx(naive / draws, abs=1e-12)
    assert corrected <= naive and naive > 0  # the correction only widens the test
    assert (res.n_draws, res.repeats, res.folds, res.n, res.alpha) == (draws, repeats, folds,
                                                                       n, alpha)  # fmt: skip
    assert res.monte_carlo_se == pytest.approx(math.sqrt(alpha * (1 - alpha) / draws))
    assert res.to_dict()["corrected_rejection_rate"] == res.corrected_rejection_rate


def test_identical_fold_scores_are_no_evidence() -> None:
    """A signal so strong that both extractors score 1 everywhere: every difference is 0, the
    variance 0, and no draw may count as a rejection (0/0 is no evidence)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 0/0 is handled, not warned about
        for alpha in (0.05, 0.6):  # at 0.6 the critical t is below 1
            res = null_calibration(5, 2, 3, 30, seed=1, alpha=alpha, signal=1e6, shared_noise=0.0)
            assert res.corrected_rejection_rate == 0.0 and res.naive_rejection_rate == 0.0


@pytest.mark.parametrize(
    ("bad", "boundary"),
    [
        ({"n_draws": 0}, {"n_draws": 1}),
        ({"repeats": 0}, {"repeats": 1}),
        ({"folds": 1}, {"folds": 2}),
        ({"n": 9, "folds": 5}, {"n": 10, "folds": 5}),
    ],
)
def test_bad_settings_are_one_line_errors(bad: dict[str, int], boundary: dict[str, int]) -> None:
    message = r"^null_calibration needs n_draws >= 1, repeats >= 1, folds >= 2 and n >= 2\*folds$"
    with pytest.raises(StatisticsError, match=message):
        null_calibration(**{"n_draws": 2, **bad})
    res = null_calibration(**{"n_draws": 2, **boundary})  # the smallest valid settings run
    assert 0.0 <= res.corrected_rejection_rate <= res.naive_rejection_rate <= 1.0


def test_stratified_folds_continue_where_the_first_class_stopped() -> None:
    """8 items of one class and 1 of the other in 5 folds: the second class must go to the
    fold after the first class's last item, else one fold holds 3 items and another 1."""
    y = np.array([0] * 8 + [1])
    folds = _stratified_folds(y, 20, 5, np.random.default_rng(3))
    for r in range(20):
        sizes = np.bincount(folds[r], minlength=5)
        assert sizes.max() - sizes.min() <= 1


def test_documented_defaults() -> None:
    """The defaults the module docstring's measurements were made with."""
    a, b = simulate_null_fold_scores(np.random.default_rng(8), repeats=2, folds=5, n=40)
    a2, b2 = simulate_null_fold_scores(np.random.default_rng(8), repeats=2, folds=5, n=40,
                                       n_features=5, signal=1.0, shared_noise=1.0)  # fmt: skip
    assert np.array_equal(a, a2) and np.array_equal(b, b2)
    explicit = null_calibration(1000, 10, 5, 100, 0, alpha=0.05, n_features=5, signal=1.0,
                                shared_noise=1.0)  # fmt: skip
    assert null_calibration() == explicit and explicit.n_draws == 1000
