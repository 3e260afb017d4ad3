"""Stored runs with the shapes the LUAD tasks produce, written through ``ResultsStore.save_run``.

The scores are simulated, but everything downstream (pairing checks, tests, tables, figures)
runs on what the store gives back, exactly as for real runs. Each run stores the evaluation
identity the runner would build for it, from the real LUAD task with the given options.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import stats
from sklearn.metrics import roc_auc_score

from histobench.benchmark.identity import evaluation_identity
from histobench.benchmark.splits import make_plan
from histobench.benchmark.store import ResultsStore
from histobench.plugins.specs import Dataset, Predictions, SplitPlan, TargetResult, TaskResult
from histobench.tasks.luad import (
    LuadExpressionOptions,
    LuadMutationOptions,
    make_expression_task,
    make_mutation_task,
)

N_PATIENTS = 60


def patient_plan(repeats: int, folds: int, seed: int = 0, n: int = N_PATIENTS) -> SplitPlan:
    ids = [f"TCGA-XX-{i:04d}" for i in range(n)]
    return make_plan(ids, np.arange(n) % 2, ids, repeats, folds, seed=seed)


def _save(
    store: ResultsStore,
    run_id: str,
    extractor: str,
    task: str,
    plan: SplitPlan,
    result: TaskResult,
    created: str,
    fingerprint: str = "fp-luad",
    options: dict | None = None,
) -> None:
    """Store a simulated run; ``fingerprint`` stands for its precomputed feature files, and
    ``options`` are the LUAD task's options (they enter the evaluation identity)."""
    store.save_plan(plan, task, fingerprint)
    if task == "luad-expression":
        task_object = make_expression_task(LuadExpressionOptions(**(options or {})))
    else:
        task_object = make_mutation_task(LuadMutationOptions(**(options or {})))
    features = Dataset("tcga-luad-sim", "cohort", [], precomputed_label=extractor)
    store.save_run(
        run_id=run_id,
        created=created,
        extractor=extractor,
        task=task,
        dataset="tcga-luad-sim",
        dataset_fingerprint=fingerprint,
        plan=plan,
        greater_is_better=True,
        result=result,
        config={"extractor": extractor, "task": task},
        env={"device": "cpu", "precision": "float32"},
        code_version="0.1.0+test",
        skipped=[],
        evaluation=evaluation_identity(task_object, features, plan, result),
    )


def expression_run(
    store: ResultsStore, run_id: str, extractor: str, plan: SplitPlan, skill: float,
    created: str, n_genes: int = 12, seed: int = 0, options: dict | None = None,
    truth_seed: int = 1234, fingerprint: str = "fp-luad", details: dict | None = None,
) -> TaskResult:  # fmt: skip
    """luad-expression: per gene SVR predictions, Pearson r per fold, a repeat's score the mean
    of its folds, with the pooled per-repeat p-values and a "significant" flag in ``extra`` as
    the task records them. ``truth_seed`` draws the observed expression (the labels);
    ``details`` are added to the run details (e.g. the task's ``paired_test``)."""
    rng = np.random.default_rng(seed)
    truth_rng = np.random.default_rng(truth_seed)  # the same labels for every extractor
    R, K, N = plan.repeats, plan.folds, plan.n_units
    per_target, preds = {}, []
    for g in range(n_genes):
        gene = f"GENE{g:02d}"
        y = truth_rng.normal(size=N)
        strength = skill * (1.0 + g / n_genes)
        y_pred = strength * y[None, :] + rng.normal(size=(R, N))
        rep = np.array([stats.pearsonr(y, y_pred[r]) for r in range(R)])
        folds = np.full((R, K), np.nan)
        for r, k, _, test in plan.iter_folds():
            folds[r, k] = stats.pearsonr(y[test], y_pred[r, test])[0]
        pvals = rep[:, 1].tolist()
        per_target[gene] = TargetResult(
            "pearson_r",
            folds.mean(axis=1),
            folds,
            {"p_values": pvals, "significant": bool(np.median(pvals) < 0.05)},
        )
        preds.append(Predictions(gene, y, y_pred))
    repeat_scores = np.mean([t.repeat_scores for t in per_target.values()], axis=0)
    fold_scores = np.nanmean([t.fold_scores for t in per_target.values()], axis=0)
    result = TaskResult(
        "pearson_r", fold_scores, repeat_scores, per_target, preds,
        {"target_kind": "gene", **(details or {})},
    )  # fmt: skip
    _save(store, run_id, extractor, "luad-expression", plan, result, created, fingerprint, options)
    return result


def mutation_run(
    store: ResultsStore, run_id: str, extractor: str, plan: SplitPlan, skill: float,
    created: str, n_genes: int = 5, seed: int = 0, fold_scores: bool = True,
    options: dict | None = None, details: dict | None = None,
) -> TaskResult:  # fmt: skip
    """luad-mutation: per gene probabilities (R, N), y_true 0/1, AUC per repeat."""
    rng = np.random.default_rng(seed)
    truth_rng = np.random.default_rng(99)
    R, K, N = plan.repeats, plan.folds, plan.n_units
    per_target, preds = {}, []
    for g in range(n_genes):
        gene = ["TP53", "KRAS", "EGFR", "STK11", "KEAP1", "NF1", "SMARCA4"][g % 7] + (
            "" if g < 7 else str(g)
        )
        y = (truth_rng.uniform(size=N) < 0.4).astype(int)
        y[:2], y[2:4] = 1, 0  # both classes present
        logit = skill * (2 * y[None, :] - 1) + rng.normal(size=(R, N))
        prob = 1 / (1 + np.exp(-logit))
        rep = np.array([roc_auc_score(y, prob[r]) for r in range(R)])
        folds = None
        if fold_scores:
            folds = np.full((R, K), np.nan)
            for r, k, _, test in plan.iter_folds():
                if 0 < y[test].sum() < test.size:
                    folds[r, k] = roc_auc_score(y[test], prob[r, test])
        per_target[gene] = TargetResult("auc", rep, folds, {})
        preds.append(Predictions(gene, y, prob))
    repeat_scores = np.mean([t.repeat_scores for t in per_target.values()], axis=0)
    head_folds = (
        np.nanmean([t.fold_scores for t in per_target.values()], axis=0)
        if fold_scores
        else np.tile(repeat_scores[:, None], (1, K))
    )
    result = TaskResult(
        "auc", head_folds, repeat_scores, per_target, preds,
        {"target_kind": "gene", **(details or {})},
    )  # fmt: skip
    _save(store, run_id, extractor, "luad-mutation", plan, result, created, options=options)
    return result


def open_store(home: Path) -> ResultsStore:
    return ResultsStore(home / "results.sqlite")


def stored_fold_runs(
    store: ResultsStore, fold_a: np.ndarray, fold_b: np.ndarray, gene: str = "TP53"
) -> None:
    """Runs "a" (ftx) and "b" (imgnet) on luad-mutation with exactly these (R, K) fold AUCs for
    one gene and the headline (a repeat's score: the mean of its folds)."""
    plan = patient_plan(*fold_a.shape)
    y = (np.arange(plan.n_units) % 2).astype(float)
    for run_id, name, folds in (("a", "ftx", fold_a), ("b", "imgnet", fold_b)):
        target = TargetResult("auc", folds.mean(axis=1), folds, {})
        pred = Predictions(gene, y, np.full((plan.repeats, plan.n_units), 0.5))
        result = TaskResult("auc", folds, folds.mean(axis=1), {gene: target}, [pred], {})
        created = f"2026-01-01T00:00:0{1 if run_id == 'a' else 2}"
        _save(store, run_id, name, "luad-mutation", plan, result, created)
