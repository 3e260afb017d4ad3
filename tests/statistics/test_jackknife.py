"""The unit jackknife test of the fold-mean difference (``statistics.jackknife``).

Deletion formulas are checked against brute-force recomputation with scikit-learn / numpy; the
test's calibration against a null simulation with the mechanism of the LUAD shape: two kernel
ridge "extractors" on random features, independent of the labels, scored by r or AUC per fold
on one repeated 5-fold plan. There the corrected resampled t-test over-rejects (the repeats'
fold differences are more correlated than n_test/n_train); the jackknife with both roles
counted stays near alpha, and with the test role alone it does not.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from histobench.benchmark.splits import make_plan
from histobench.statistics import StatisticsError, corrected_resampled_ttest
from histobench.statistics.jackknife import (
    auc_without_each,
    fold_differences,
    fold_mean_and_deletions,
    pearson_without_each,
    unit_jackknife_test,
)


def _auc(y: np.ndarray, s: np.ndarray) -> float:
    return float(roc_auc_score(y, s)) if 0 < y.sum() < y.size else np.nan


def test_leave_one_out_auc_and_r_equal_recomputation() -> None:
    rng = np.random.default_rng(0)
    y = (rng.random(31) < 0.35).astype(float)
    s = np.round(rng.normal(size=31), 1)  # ties between scores
    full, loo = auc_without_each(s, y)
    assert full == pytest.approx(roc_auc_score(y, s), abs=1e-14)
    brute = [roc_auc_score(np.delete(y, i), np.delete(s, i)) for i in range(31)]
    np.testing.assert_allclose(loo, brute, atol=1e-13)

    yc = rng.normal(size=31)
    full, loo = pearson_without_each(s, yc)
    assert full == pytest.approx(np.corrcoef(s, yc)[0, 1], abs=1e-13)
    brute = [np.corrcoef(np.delete(s, i), np.delete(yc, i))[0, 1] for i in range(31)]
    np.testing.assert_allclose(loo, brute, atol=1e-12)


def test_headline_and_deletions_equal_recomputation_with_missing_labels() -> None:
    """The headline is the mean over folds of the mean over genes of each fold's difference
    (the LUAD runs' own two means); deleting unit i recomputes every fold it is in. A unit
    without a label for a gene, or without a prediction, is not scored for that gene."""
    rng = np.random.default_rng(1)
    repeats, n, folds, genes = 3, 40, 4, 3
    assign = np.stack([rng.permutation(np.arange(n) % folds) for _ in range(repeats)])
    y = (rng.random((genes, n)) < 0.45).astype(float)
    y[1, 5] = np.nan
    pa, pb = rng.normal(size=(2, genes, repeats, n))
    pa[2, :, 7] = np.nan

    def headline(keep: np.ndarray) -> float:
        head = np.full((repeats, folds), np.nan)
        for r in range(repeats):
            for k in range(folds):
                d = []
                for g in range(genes):
                    m = (assign[r] == k) & keep & np.isfinite(y[g]) & np.isfinite(pa[g, r])
                    d.append(_auc(y[g, m], pa[g, r, m]) - _auc(y[g, m], pb[g, r, m]))
                head[r, k] = np.nanmean(d)
        return float(np.nanmean(head))

    per = [fold_differences(y[g], pa[g], pb[g], assign, "auc") for g in range(genes)]
    mean, deleted = fold_mean_and_deletions([d for d, _ in per], [w for _, w in per], assign)
    assert mean == pytest.approx(headline(np.ones(n, bool)), abs=1e-14)
    for i in range(n):
        sole = any(  # deleting a fold's only positive or negative: documented as unchanged
            np.nansum(y[g, (assign[r] == assign[r, i]) & np.isfinite(pa[g, r])] == y[g, i]) == 1
            for g in range(genes)
            for r in range(repeats)
        )
        if not sole:
            assert deleted[i] == pytest.approx(headline(np.arange(n) != i), abs=1e-13), i


def test_variance_is_roles_times_the_jackknife_and_ci_matches() -> None:
    rng = np.random.default_rng(2)
    repeats, n = 4, 50
    assign = np.stack([rng.permutation(np.arange(n) % 5) for _ in range(repeats)])
    y = rng.normal(size=n)
    pa = 0.5 * y + rng.normal(size=(repeats, n))
    pb = 0.2 * y + rng.normal(size=(repeats, n))
    one = unit_jackknife_test(y, pa, pb, assign, "pearson_r", roles=1)
    two = unit_jackknife_test(y, pa, pb, assign, "pearson_r")
    assert one.effect_size == two.effect_size
    assert two.statistic == pytest.approx(one.statistic / np.sqrt(2))
    # The variance by hand: jackknife over units of the deleted fold means.
    diffs, deleted = fold_differences(y, pa, pb, assign, "pearson_r")
    mean, without = fold_mean_and_deletions([diffs], [deleted], assign)
    var = 2 * (n - 1) / n * ((without - without.mean()) ** 2).sum()
    assert two.effect_size == pytest.approx(np.nanmean(diffs)) == pytest.approx(mean)
    assert two.statistic == pytest.approx(mean / np.sqrt(var))
    assert two.ci_low < two.effect_size < two.ci_high
    assert two.df == n - 1
    # One run alone: its own score and CI.
    alone = unit_jackknife_test(y, pa, None, assign, "pearson_r")
    assert alone.effect_size == pytest.approx(np.nanmean(fold_differences(y, pa, None, assign,
                                                                          "pearson_r")[0]))  # fmt: skip
    assert alone.ci_low < alone.effect_size < alone.ci_high


def test_bad_shapes_and_metric_are_one_line_errors() -> None:
    assign = np.zeros((2, 10), dtype=int)
    with pytest.raises(StatisticsError, match="metric must be one of"):
        unit_jackknife_test(np.zeros(10), np.zeros((2, 10)), None, assign, "accuracy")
    with pytest.raises(StatisticsError, match=r"predictions must be \(1, 2, 10\)"):
        unit_jackknife_test(np.zeros(10), np.zeros((3, 10)), None, assign, "auc")


def _null_draw(seed: int, metric: str, n: int = 80, p: int = 200, repeats: int = 5) -> tuple:
    """Labels, two null kernel-ridge extractors' out-of-fold predictions, and the plan."""
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n) if metric == "pearson_r" else (rng.random(n) < 0.3).astype(float)
    ids = [str(i) for i in range(n)]
    strata = np.zeros(n, int) if metric == "pearson_r" else y.astype(int)
    assign = make_plan(ids, strata, ids, repeats, 5, seed).assignments
    preds = []
    for _ in range(2):
        X = rng.normal(size=(n, p))
        gram = X @ X.T / p
        pred = np.empty((repeats, n))
        for r in range(repeats):
            for k in range(5):
                test, train = assign[r] == k, assign[r] != k
                mu = y[train].mean()
                alpha = np.linalg.solve(gram[np.ix_(train, train)] + np.eye(train.sum()),
                                        y[train] - mu)  # fmt: skip
                pred[r, test] = gram[np.ix_(test, train)] @ alpha + mu
        preds.append(pred)
    return y, preds[0], preds[1], assign


@pytest.mark.slow
@pytest.mark.parametrize("metric", ["pearson_r", "auc"])
def test_null_calibration_of_the_default_test(metric: str) -> None:
    """300 null draws: the jackknife (both roles) rejects at most ~7 %; counting the test role
    alone, or the corrected t-test on the same folds, rejects well above 5 %."""
    draws = 300
    rejected = {"jackknife": 0, "test role only": 0, "corrected t": 0}
    for seed in range(draws):
        y, pa, pb, assign = _null_draw(seed, metric)
        rejected["jackknife"] += unit_jackknife_test(y, pa, pb, assign, metric).p_value < 0.05
        one = unit_jackknife_test(y, pa, pb, assign, metric, roles=1)
        rejected["test role only"] += one.p_value < 0.05
        fa = fold_differences(y, pa, None, assign, metric)[0]
        fb = fold_differences(y, pb, None, assign, metric)[0]
        rejected["corrected t"] += corrected_resampled_ttest(fa, fb, 64, 16).p_value < 0.05
    rate = {k: v / draws for k, v in rejected.items()}
    assert 0.01 <= rate["jackknife"] <= 0.075, rate
    assert rate["test role only"] >= 0.10, rate
    assert rate["corrected t"] >= 0.075, rate
