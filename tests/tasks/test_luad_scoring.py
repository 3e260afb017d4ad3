"""The LUAD tasks show and test one quantity: a repeat's score is the mean of its fold scores.

Under the null (features independent of the labels) the fold-mean score sits at chance, while
the study's pooled score (one r of all K folds' predictions) sits below it; and the default
paired test (the unit jackknife of the fold-mean difference) rejects near its nominal rate.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from histobench.benchmark.splits import make_plan
from histobench.plugins.labels import InMemoryLabels, LabelMatrix
from histobench.plugins.specs import Dataset, Item
from histobench.statistics import corrected_resampled_ttest
from histobench.tasks.luad import (
    LuadExpressionOptions,
    LuadExpressionTask,
    LuadMutationOptions,
    LuadMutationTask,
    fold_aucs,
)


def _dataset(kind: str, values: np.ndarray) -> Dataset:
    patients = [f"TCGA-NU-{i:04d}" for i in range(values.shape[0])]
    genes = [f"G{j}" for j in range(values.shape[1])]
    items = [Item(f"{p}-slide", Path(f"{p}.h5"), patient=p) for p in patients]
    matrix = LabelMatrix(kind, Path(f"{kind}.tsv"), patients, genes, values)
    key = "mutation_matrix" if kind == "mutations" else "expression_matrix"
    return Dataset("null", "cohort", items, labels=InMemoryLabels(**{key: matrix}))


def _evaluate(task, dataset: Dataset, X: np.ndarray, repeats: int, folds: int, seed: int):  # type: ignore[no-untyped-def]
    units = task.units(dataset, dataset.items)  # patient ids sorted = item order here
    plan = make_plan(units.ids, units.strata, units.groups, repeats, folds, seed)
    return plan, task.evaluate(X, units, plan)


def _assert_fold_mean_everywhere(result) -> None:  # type: ignore[no-untyped-def]
    for target in result.per_target.values():
        np.testing.assert_allclose(target.repeat_scores, np.nanmean(target.fold_scores, axis=1))
    np.testing.assert_allclose(result.repeat_scores, np.nanmean(result.fold_scores, axis=1))
    per_gene_folds = np.stack([t.fold_scores for t in result.per_target.values()])
    np.testing.assert_allclose(result.fold_scores, np.nanmean(per_gene_folds, axis=0))


def test_expression_repeat_score_is_the_tested_fold_mean_not_the_pooled_r() -> None:
    """Null features, 60 genes, unequal folds (43 patients, 5 folds): the displayed score is
    the fold mean at chance; the pooled r kept beside it is biased below chance."""
    rng = np.random.default_rng(11)
    n, genes = 43, 60
    X = rng.normal(size=(n, 12))
    task = LuadExpressionTask(LuadExpressionOptions(n_jobs=1))
    plan, res = _evaluate(task, _dataset("expression", rng.normal(size=(n, genes))), X, 4, 5, 0)
    _assert_fold_mean_everywhere(res)
    pooled = np.array([t.extra["pooled_scores"] for t in res.per_target.values()], dtype=float)
    shown = float(np.mean(res.repeat_scores))
    assert abs(shown) < 0.03, shown  # fold-mean r: unbiased under the null
    assert pooled.mean() < shown - 0.03, (pooled.mean(), shown)  # pooled: below chance
    assert "mean of the K per-fold scores" in res.details["repeat_score"]


def test_mutation_repeat_score_is_the_tested_fold_mean() -> None:
    rng = np.random.default_rng(12)
    n = 41
    y = np.stack([(rng.random(n) < 0.4), (rng.random(n) < 0.3)], axis=1).astype(float)
    X = rng.normal(size=(n, 6))
    X[:, 0] += 1.5 * y[:, 0]
    task = LuadMutationTask(LuadMutationOptions(n_jobs=1, inner_folds=3))
    plan, res = _evaluate(task, _dataset("mutations", y), X, 3, 4, 1)
    _assert_fold_mean_everywhere(res)
    g0 = res.per_target["G0"]
    prob = res.predictions[0].y_pred
    np.testing.assert_allclose(g0.fold_scores, fold_aucs(y[:, 0], prob, plan.assignments, 4))
    assert g0.mean > 0.75 and len(g0.extra["pooled_scores"]) == 3
    with pytest.raises(ValueError, match="repeat_score"):
        LuadMutationOptions(repeat_score="pooled")  # type: ignore[arg-type]


def test_fold_auc_is_unbiased_where_the_pooled_auc_is_not() -> None:
    """An intercept-only model predicts each fold's training prevalence: fold AUC is exactly
    0.5 (ties count half), pooled AUC falls below 0.5 (training prevalence anti-correlates
    with the test fold's)."""
    rng = np.random.default_rng(13)
    n, folds = 40, 5
    pooled, per_fold = [], []
    for _ in range(200):
        y = (rng.random(n) < 0.3).astype(float)
        assign = rng.permutation(np.arange(n) % folds)[None, :]
        prob = np.array([[y[assign[0] != assign[0, i]].mean() for i in range(n)]])
        per_fold.append(np.nanmean(fold_aucs(y, prob, assign, folds)))
        pooled.append(roc_auc_score(y, prob[0]) if 0 < y.sum() < n else np.nan)
    assert np.nanmean(per_fold) == pytest.approx(0.5)
    assert np.nanmean(pooled) < 0.4  # far below chance


def test_default_test_is_calibrated_under_the_null_fast() -> None:
    """Two extractors independent of the labels, 24 draws × 8 genes, 5 × 5 plan, the real
    luad-expression task: the tasks' default test (the unit jackknife from the stored
    predictions) rejects near 5 % (loose band for 192 tests), as does the corrected t-test at
    this small, low-dimensional shape. The naive t-test on the same scores rejects far more
    (shows the band can fail). The full-size calibration, where the corrected t-test fails, is
    in BENCHMARKS.md."""
    from histobench.statistics import naive_paired_ttest
    from histobench.statistics.jackknife import unit_jackknife_test

    rng = np.random.default_rng(14)
    n, p, genes, draws = 50, 20, 8, 24
    jackknife, corrected, naive, headline = [], [], [], []
    for draw in range(draws):
        dataset = _dataset("expression", rng.normal(size=(n, genes)))
        results = []
        for _ in range(2):
            task = LuadExpressionTask(LuadExpressionOptions(n_jobs=1))
            plan, res = _evaluate(task, dataset, rng.normal(size=(n, p)), 5, 5, draw)
            results.append(res)
        n_train, n_test = plan.mean_train_test_sizes()
        a, b = results
        assert a.details["paired_test"] == "jackknife"
        pa = {x.target: x for x in a.predictions}
        pb = {x.target: x for x in b.predictions}
        for gene in a.per_target:
            fa, fb = a.per_target[gene].fold_scores, b.per_target[gene].fold_scores
            jk = unit_jackknife_test(pa[gene].y_true, pa[gene].y_pred, pb[gene].y_pred,
                                     plan.assignments, "pearson_r")  # fmt: skip
            assert jk.effect_size == pytest.approx(np.mean(fa) - np.mean(fb))
            jackknife.append(jk.p_value < 0.05)
            corrected.append(corrected_resampled_ttest(fa, fb, n_train, n_test).p_value < 0.05)
            naive.append(naive_paired_ttest(fa, fb).p_value < 0.05)
        y = np.stack([pa[g].y_true for g in a.per_target])
        head = unit_jackknife_test(y, np.stack([pa[g].y_pred for g in a.per_target]),
                                   np.stack([pb[g].y_pred for g in a.per_target]),
                                   plan.assignments, "pearson_r")  # fmt: skip
        headline.append(head.p_value < 0.05)
        # The effect the test reports is the difference of the displayed means.
        shown = float(np.mean(a.repeat_scores) - np.mean(b.repeat_scores))
        assert head.effect_size == pytest.approx(shown)
    rate = float(np.mean(jackknife))
    assert 0.005 <= rate <= 0.11, rate
    assert 0.005 <= float(np.mean(corrected)) <= 0.11
    assert float(np.mean(naive)) > rate + 0.1
    assert float(np.mean(headline)) <= 0.25


def test_significant_gene_counts_are_benjamini_hochberg_corrected() -> None:
    from statsmodels.stats.multitest import multipletests

    from histobench.plugins.specs import TargetResult
    from histobench.tasks.luad import LuadExpressionOptions, LuadExpressionTask

    # 40 null genes with uniform p-values and 2 genes with a real signal, over 3 repeats:
    # uncorrected, about 5 % of the null genes pass p < 0.05; after BH only the real ones do.
    rng = np.random.default_rng(3)
    p = rng.uniform(size=(42, 3))
    p[:6, :] = np.array([0.011, 0.02, 0.03, 0.04, 0.045, 0.049])[:, None]  # borderline nulls
    p[40:, :] = 1e-6
    per_target = {
        f"G{i}": TargetResult("pearson_r", np.zeros(3), extra={"p_values": list(p[i])})
        for i in range(42)
    }
    for t in per_target.values():
        t.extra["significant"] = bool((np.asarray(t.extra["p_values"]) < 0.05).mean() > 0.5)
    task = LuadExpressionTask(LuadExpressionOptions(n_jobs=1))
    calls = task._mark_fdr_significant(per_target)
    expected = [
        f"G{i}"
        for i in range(42)
        if (
            np.column_stack([multipletests(p[:, r], method="fdr_bh")[1] for r in range(3)])[i]
            <= 0.05
        ).mean()
        > 0.5
    ]
    assert calls == expected == ["G40", "G41"]
    assert sum(t.extra["significant_uncorrected"] for t in per_target.values()) >= 8
