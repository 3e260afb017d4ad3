"""luad-expression and luad-mutation: patient features → per-gene SVR / LASSO, the study's
experiments 2 and 3.

Units are the patients that have both features and labels (a patient's vector is the mean of
all its tiles over all its slides; the runner pools it). Which patients were dropped on either
side, which genes were skipped and why, and every protocol choice (estimator parameters, the
rule that calls a gene "significant") are stored in ``TaskResult.details``.

Per gene and repeat, the out-of-fold predictions of the K test folds are pooled and scored
once (Pearson r or AUC, with a one-sided p-value by default); ``fold_scores`` scores each test
fold alone. The headline score of a repeat is the mean over the scored genes.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field
from scipy import stats

from histobench.benchmark.progress import make_progress
from histobench.plugins.errors import DataError
from histobench.plugins.labels import LabelMatrix, patient_key
from histobench.plugins.specs import (
    Dataset,
    Item,
    PluginOptions,
    Predictions,
    SplitPlan,
    TargetResult,
    Task,
    TaskResult,
    TaskSpec,
    Units,
)

Alternative = Literal["greater", "two-sided"]
SignificanceRule = Literal["majority", "median", "all"]


def read_gene_list(path: Path) -> list[str]:
    """One gene per line (the first field of a CSV or TSV line); a 'gene' header is dropped."""
    if not path.is_file():
        raise DataError(f"{path}: genes file not found")
    genes = []
    for line in path.read_text(encoding="utf-8-sig").splitlines():
        text = line.strip()
        if text and not text.startswith("#"):
            genes.append(text.replace("\t", ",").split(",")[0].strip().strip('"'))
    if genes and genes[0].lower() in {"gene", "genes", "symbol", "hugo_symbol"}:
        genes = genes[1:]
    if not genes:
        raise DataError(f"{path}: genes file lists nothing")
    return genes


class LuadOptions(PluginOptions):
    genes: list[str] | None = Field(
        None, description="Genes to evaluate (default: the cohort's list, else every gene)."
    )
    genes_file: Path | None = Field(None, description="File with one gene per line.")
    alpha: float = Field(0.05, gt=0, lt=1, description="p-value threshold of significance.")
    significance_rule: SignificanceRule = Field(
        "majority",
        description=(
            "A gene is significant when its pooled p < alpha in more than half the repeats "
            "(majority), in the median repeat (median), or in every repeat (all)."
        ),
    )
    alternative: Alternative = Field(
        "greater",
        description=(
            "greater: one-sided (r > 0, AUC > 0.5): a prediction worse than chance is not a "
            "success; two-sided: R cor.test's default."
        ),
    )
    repeat_score: Literal["pooled", "fold-mean"] = Field(
        "pooled",
        description="A repeat's score: one score of the K folds' pooled predictions (the "
        "study's protocol), or the mean of the K per-fold scores. Pooling is biased below "
        "chance when a model predicts little more than its training mean (fold means differ), "
        "which the fold mean is not; p-values always come from the pooled predictions.",
    )
    n_jobs: int = Field(-1, description="Parallel fold fits (-1: all cores).")


def repeat_scores(pooled: np.ndarray, fold_scores: np.ndarray, how: str) -> np.ndarray:
    """The per-repeat score the options ask for (see ``LuadOptions.repeat_score``)."""
    if how == "pooled":
        return pooled
    with _quiet_nan_warnings():
        return np.nanmean(fold_scores, axis=1)


class LuadExpressionOptions(LuadOptions):
    cost: float = Field(1.0, gt=0, description="e1071 cost (C).")
    epsilon: float = Field(0.1, ge=0, description="e1071 epsilon of the insensitive loss.")
    gamma: float | None = Field(None, gt=0, description="RBF gamma; None = 1 / n_features.")
    tolerance: float = Field(0.001, gt=0, description="libsvm stopping tolerance (e1071 0.001).")
    constant_columns: Literal["e1071", "skip"] = Field(
        "e1071",
        description="e1071: any constant feature disables scaling (as R does); skip: leave "
        "only constant features unscaled.",
    )
    min_samples: int = Field(
        10, ge=3, description="Skip genes with fewer patients that have a value."
    )


class LuadMutationOptions(LuadOptions):
    inner_folds: int = Field(10, ge=3, description="cv.glmnet folds that choose lambda.")
    lambda_rule: Literal["min", "1se"] = Field(
        "min", description="lambda.min (largest lambda at minimum CV deviance) or lambda.1se."
    )
    nlambda: int = Field(100, ge=2, description="Length of glmnet's lambda sequence.")
    lambda_min_ratio: float | None = Field(
        None, gt=0, lt=1, description="None = glmnet's default (0.01 when n < p, else 1e-4)."
    )
    min_positives: int = Field(
        5,
        ge=2,
        description="Skip genes with fewer mutated (or non-mutated) patients than this or "
        "than the number of folds.",
    )
    stratify_gene: str | None = Field(
        None, description="Stratify the split plan on this gene's status (default: none)."
    )


def _none_if_nan(values: np.ndarray) -> list[float | None]:
    return [None if not math.isfinite(float(v)) else float(v) for v in np.ravel(values)]


def significant(p_values: np.ndarray, alpha: float, rule: SignificanceRule) -> bool:
    """Apply the recorded significance rule to one gene's per-repeat p-values."""
    p = np.asarray(p_values, dtype=float)
    p = np.where(np.isfinite(p), p, 1.0)  # an unscoreable repeat counts as not significant
    if rule == "majority":
        return bool((p < alpha).mean() > 0.5)
    if rule == "median":
        return bool(np.median(p) < alpha)
    return bool((p < alpha).all())


def pearson_with_p(
    y: np.ndarray, pred: np.ndarray, alternative: Alternative
) -> tuple[np.ndarray, np.ndarray]:
    """Pearson r of ``y`` (N,) with each row of ``pred`` (R, N), and its p-value (t test)."""
    n = y.shape[0]
    yc = y - y.mean()
    pc = pred - pred.mean(axis=1, keepdims=True)
    denom = np.sqrt((yc @ yc) * (pc * pc).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(denom > 0, (pc @ yc) / denom, np.nan)
        r = np.clip(r, -1.0, 1.0)
        t = r * np.sqrt((n - 2) / np.maximum(1.0 - r * r, 1e-300))
    p = stats.t.sf(t, n - 2) if alternative == "greater" else 2.0 * stats.t.sf(np.abs(t), n - 2)
    return r, np.where(np.isfinite(r), p, np.nan)


def masked_pearson(
    Y: np.ndarray, P: np.ndarray, alternative: Alternative, min_n: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """Pearson r and p of each column of ``Y`` (n, G; NaN = no value) with the same of ``P``.

    Equal to :func:`pearson_with_p` on each column's rows with a value; NaN where a column has
    fewer than ``min_n`` values or no variance.
    """
    mask = np.isfinite(Y)
    n = mask.sum(axis=0).astype(np.float64)
    Yz = np.where(mask, Y, 0.0)
    Pz = np.where(mask, P, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        my = Yz.sum(axis=0) / n
        mp = Pz.sum(axis=0) / n
        yc = np.where(mask, Y - my, 0.0)
        pc = np.where(mask, P - mp, 0.0)
        denom = np.sqrt((yc * yc).sum(axis=0) * (pc * pc).sum(axis=0))
        r = np.where((denom > 0) & (n >= min_n), (yc * pc).sum(axis=0) / denom, np.nan)
        r = np.clip(r, -1.0, 1.0)
        t = r * np.sqrt((n - 2) / np.maximum(1.0 - r * r, 1e-300))
        df = np.maximum(n - 2, 1)
    p = stats.t.sf(t, df) if alternative == "greater" else 2.0 * stats.t.sf(np.abs(t), df)
    return r, np.where(np.isfinite(r), p, np.nan)


def auc_with_p(y: np.ndarray, score: np.ndarray, alternative: Alternative) -> tuple[float, float]:
    """ROC AUC (ties count half, as scikit-learn) and the Mann–Whitney p-value."""
    pos = y == 1
    n1, n0 = int(pos.sum()), int((~pos).sum())
    if n1 == 0 or n0 == 0:
        return math.nan, math.nan
    ranks = stats.rankdata(score)
    auc = (ranks[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0)
    test = stats.mannwhitneyu(score[pos], score[~pos], alternative=alternative)
    return float(auc), float(test.pvalue)


def _n_jobs(n_jobs: int) -> int:
    return n_jobs if n_jobs > 0 else max(1, (os.cpu_count() or 1) + 1 + n_jobs)


class _LuadTask(Task):
    """Alignment of features and labels by patient; gene selection; shared reporting."""

    label_kind = ""
    target_kind = "gene"

    def __init__(self, options: LuadOptions) -> None:
        self.options = options
        self.genes: list[str] = []
        self.Y = np.empty((0, 0))
        self.alignment: dict[str, Any] = {}
        self.skipped_genes: dict[str, str] = {}
        self.label_report: dict[str, Any] = {}

    # -- labels ---------------------------------------------------------------------------

    def _requested_genes(self, dataset: Dataset) -> list[str] | None:
        if self.options.genes is not None:
            return list(self.options.genes)
        if self.options.genes_file is not None:
            return read_gene_list(Path(self.options.genes_file))
        return dataset.labels.genes() if dataset.labels is not None else None

    def _label_matrix(self, dataset: Dataset, genes: list[str] | None) -> LabelMatrix:
        if dataset.labels is None:
            raise DataError(
                f"{dataset.name}: {self.name} needs {self.label_kind} labels "
                f"(a cohort file with '{self.label_kind}')"
            )
        if self.label_kind == "mutations":
            return dataset.labels.mutations(genes)
        return dataset.labels.expression(genes)

    def check(self, dataset: Dataset) -> None:
        # Reads (and validates) the label files now; cohorts cache them for ``units``.
        self._label_matrix(dataset, self._requested_genes(dataset))

    def units(self, dataset: Dataset, items: Sequence[Item]) -> Units:
        requested = self._requested_genes(dataset)
        matrix = self._label_matrix(dataset, requested)
        self.label_report = {"source": str(matrix.source), **matrix.report}
        members: dict[str, list[int]] = {}
        for index, item in enumerate(items):
            members.setdefault(patient_key(item.patient or item.item_id), []).append(index)
        label_rows = matrix.patient_index()
        both = sorted(p for p in members if p in label_rows)
        features_only = sorted(p for p in members if p not in label_rows)
        labels_only = sorted(p for p in label_rows if p not in members)
        self.alignment = {
            "patients_with_features": len(members),
            "patients_with_labels": len(label_rows),
            "patients_used": len(both),
            "dropped_features_without_labels": len(features_only),
            "dropped_features_without_labels_examples": features_only[:10],
            "dropped_labels_without_features": len(labels_only),
            "dropped_labels_without_features_examples": labels_only[:10],
        }
        if not both:
            raise DataError(
                f"{dataset.name}: no patient has both features and {self.label_kind} labels "
                f"(feature patients e.g. {', '.join(list(members)[:3])}; label patients e.g. "
                f"{', '.join(matrix.patients[:3])}); do the ids share TCGA barcodes?"
            )
        columns = matrix.gene_index()
        wanted = requested if requested is not None else list(matrix.genes)
        self.skipped_genes = {
            g: f"not in the {self.label_kind} labels ({matrix.source.name})"
            for g in wanted
            if g not in columns
        }
        self.genes = [g for g in dict.fromkeys(wanted) if g in columns]
        if not self.genes:
            raise DataError(
                f"{matrix.source}: none of the genes {', '.join(wanted[:10])} is in the labels"
            )
        rows = [label_rows[p] for p in both]
        self.Y = matrix.values[np.ix_(rows, [columns[g] for g in self.genes])]
        return Units(
            ids=both,
            strata=self._strata(),
            groups=list(both),
            members=[np.asarray(members[p]) for p in both],
        )

    def _strata(self) -> np.ndarray:
        return np.zeros(self.Y.shape[0], dtype=np.int64)

    # -- results --------------------------------------------------------------------------

    def _finish(
        self,
        metric: str,
        per_target: dict[str, TargetResult],
        predictions: list[Predictions],
        plan: SplitPlan,
    ) -> TaskResult:
        if not per_target:
            reasons = "; ".join(f"{g}: {r}" for g, r in list(self.skipped_genes.items())[:5])
            raise DataError(f"{self.name}: no gene could be scored ({reasons})")
        repeat = np.stack([t.repeat_scores for t in per_target.values()])
        folds = np.stack([t.fold_scores for t in per_target.values()])  # type: ignore[misc]
        with np.errstate(invalid="ignore"), _quiet_nan_warnings():
            headline_repeats = np.nanmean(repeat, axis=0)
            headline_folds = np.nanmean(folds, axis=0)
        signif = [g for g, t in per_target.items() if t.extra.get("significant")]
        details = {
            **self.describe(),
            "alignment": self.alignment,
            "labels": self.label_report,
            "genes_scored": list(per_target),
            "genes_skipped": self.skipped_genes,
            "significant_genes": signif,
            "n_significant": len(signif),
            "fraction_significant": len(signif) / len(per_target),
            "headline": f"mean {metric} over the {len(per_target)} scored genes",
        }
        return TaskResult(
            metric=metric,
            fold_scores=headline_folds,
            repeat_scores=headline_repeats,
            per_target=per_target,
            predictions=predictions,
            details=details,
        )

    def _common_description(self) -> dict[str, Any]:
        o = self.options
        return {
            "units": "patients with features and labels (tile-weighted mean feature vector)",
            "repeat_score": "one score of the pooled out-of-fold predictions of all K folds"
            if o.repeat_score == "pooled"
            else "mean of the K per-fold scores",
            "significance": {
                "alpha": o.alpha,
                "rule": o.significance_rule,
                "alternative": o.alternative,
            },
            "n_jobs": o.n_jobs,
        }


@contextmanager
def _quiet_nan_warnings() -> Iterator[None]:
    """Silence 'Mean of empty slice' where nothing can be scored (NaN is the answer)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        yield


class LuadExpressionTask(_LuadTask):
    name = "luad-expression"
    metric = "pearson_r"
    label_kind = "expression"

    def __init__(self, options: LuadExpressionOptions) -> None:
        super().__init__(options)
        self.options: LuadExpressionOptions = options

    def _usable(self, plan: SplitPlan) -> list[int]:
        """Genes that every training fold can fit: enough values and not constant."""
        keep = []
        finite = np.isfinite(self.Y)
        for g, gene in enumerate(self.genes):
            y = self.Y[:, g]
            n = int(finite[:, g].sum())
            if n == 0:
                self.skipped_genes[gene] = "all values missing"
            elif n < max(self.options.min_samples, plan.folds):
                self.skipped_genes[gene] = f"only {n} patients with a value"
            elif not np.nanstd(y) > 0:
                self.skipped_genes[gene] = "no variance"
            else:
                keep.append(g)
        # e1071 scales y on each training fold: a gene constant there (e.g. mostly zeros)
        # cannot be fitted, so it is skipped rather than crashing every other gene.
        for r, k, train, _ in plan.iter_folds():
            if not keep:
                break
            block = self.Y[np.ix_(train, np.asarray(keep, dtype=np.int64))]
            counts = np.isfinite(block).sum(axis=0)
            with _quiet_nan_warnings():
                sd = np.nanstd(block, axis=0)
            bad = (counts < 2) | ~(sd > 0)
            for j in np.flatnonzero(bad)[::-1]:
                self.skipped_genes[self.genes[keep[j]]] = (
                    f"constant on the training patients of repeat {r} fold {k}"
                )
                del keep[j]
        return keep

    def evaluate(self, features: np.ndarray, units: Units, plan: SplitPlan) -> TaskResult:
        from histobench.tasks.estimators.svr import svr_cross_val_predict

        o = self.options
        keep = self._usable(plan)
        X = np.asarray(features, dtype=np.float64)
        R, K, N = plan.repeats, plan.folds, X.shape[0]
        Yk = self.Y[:, keep]
        pred = np.full((R, N, len(keep)), np.nan)
        jobs = _n_jobs(o.n_jobs)
        # Repeats in batches: each fold's kernel is computed once for all genes; a batch holds
        # at least 8 folds per core so cores do not idle at the end of a batch (5 folds on 2
        # cores would leave one idle a third of the time), and the bar still moves.
        step = max(1, math.ceil(8 * jobs / K))
        if keep:
            with make_progress("repeats") as progress:
                bar = progress.add_task(f"{self.name} ({len(keep)} genes)", total=R, rate="")
                for r0 in range(0, R, step):
                    r1 = min(R, r0 + step)
                    pred[r0:r1] = svr_cross_val_predict(
                        X,
                        Yk,
                        plan.assignments[r0:r1].astype(np.int64),
                        cost=o.cost,
                        epsilon=o.epsilon,
                        gamma=o.gamma,
                        tolerance=o.tolerance,
                        constant_columns=o.constant_columns,
                        n_jobs=jobs,
                    )
                    progress.update(bar, advance=r1 - r0)
        # Scores for all genes at once (masked where a patient has no value for a gene).
        pooled_r = np.full((R, len(keep)), np.nan)
        pooled_p = np.full((R, len(keep)), np.nan)
        fold_r = np.full((R, K, len(keep)), np.nan)
        for rep in range(R):
            pooled_r[rep], pooled_p[rep] = masked_pearson(Yk, pred[rep], o.alternative)
        for rep, k, _, test in plan.iter_folds():
            fold_r[rep, k] = masked_pearson(Yk[test], pred[rep, test], o.alternative)[0]
        per_target: dict[str, TargetResult] = {}
        predictions: list[Predictions] = []
        for j, g in enumerate(keep):
            gene = self.genes[g]
            y = Yk[:, j]
            per_target[gene] = TargetResult(
                metric="pearson_r",
                repeat_scores=repeat_scores(pooled_r[:, j], fold_r[:, :, j], o.repeat_score),
                fold_scores=fold_r[:, :, j],
                extra={
                    "pooled_scores": _none_if_nan(pooled_r[:, j]),
                    "p_values": _none_if_nan(pooled_p[:, j]),
                    "significant": significant(pooled_p[:, j], o.alpha, o.significance_rule),
                    "n": int(np.isfinite(y).sum()),
                },
            )
            predictions.append(Predictions(gene, y.copy(), pred[:, :, j].copy()))
        return self._finish("pearson_r", per_target, predictions, plan)

    def describe(self) -> dict[str, Any]:
        o = self.options
        return {
            "estimator": "SVR, R e1071 svm() eps-regression semantics (x and y scaled on the "
            "training fold, RBF kernel)",
            "cost": o.cost,
            "epsilon": o.epsilon,
            "gamma": o.gamma if o.gamma is not None else "1/n_features",
            "tolerance": o.tolerance,
            "constant_columns": o.constant_columns,
            "min_samples": o.min_samples,
            "metric": "Pearson r of observed vs pooled out-of-fold predictions",
            **self._common_description(),
        }


class LuadMutationTask(_LuadTask):
    name = "luad-mutation"
    metric = "auc"
    label_kind = "mutations"

    def __init__(self, options: LuadMutationOptions) -> None:
        super().__init__(options)
        self.options: LuadMutationOptions = options

    def _strata(self) -> np.ndarray:
        gene = self.options.stratify_gene
        if gene is None:
            return super()._strata()
        if gene not in self.genes:
            raise DataError(f"stratify_gene: {gene!r} is not among the evaluated genes")
        y = self.Y[:, self.genes.index(gene)]
        return np.where(np.isfinite(y), y, 2).astype(np.int64)  # unknown status: own stratum

    def evaluate(self, features: np.ndarray, units: Units, plan: SplitPlan) -> TaskResult:
        from histobench.tasks.estimators.glmnet import lasso_cross_val_predict

        o = self.options
        X = np.asarray(features, dtype=np.float64)
        R, K, N = plan.repeats, plan.folds, X.shape[0]
        per_target: dict[str, TargetResult] = {}
        predictions: list[Predictions] = []
        jobs = _n_jobs(o.n_jobs)
        with make_progress("genes") as progress:
            bar = progress.add_task(self.name, total=len(self.genes), rate="")
            for g, gene in enumerate(self.genes):
                progress.update(bar, advance=1)
                y = self.Y[:, g]
                ok = np.isfinite(y)
                n_pos = int((y[ok] == 1).sum())
                n_neg = int((y[ok] == 0).sum())
                need = max(o.min_positives, K)
                if not ok.any():
                    self.skipped_genes[gene] = "all values missing"
                    continue
                if min(n_pos, n_neg) == 0:
                    self.skipped_genes[gene] = f"one class only ({n_pos} mutated, {n_neg} not)"
                    continue
                if min(n_pos, n_neg) < need:
                    self.skipped_genes[gene] = (
                        f"too few {'mutated' if n_pos < n_neg else 'non-mutated'} patients "
                        f"({min(n_pos, n_neg)} < {need})"
                    )
                    continue
                try:
                    prob = lasso_cross_val_predict(
                        X[ok],
                        y[ok].astype(np.int64),
                        plan.assignments[:, ok].astype(np.int64),
                        inner_folds=o.inner_folds,
                        rule=o.lambda_rule,
                        seed=plan.seed,
                        n_jobs=jobs,
                        nlambda=o.nlambda,
                        lambda_min_ratio=o.lambda_min_ratio,
                    )
                except DataError as exc:  # e.g. an inner fold with one class
                    self.skipped_genes[gene] = str(exc)
                    continue
                per_target[gene] = self._score(gene, y, ok, prob, plan, n_pos)
                full = np.full((R, N), np.nan)
                full[:, ok] = prob
                predictions.append(Predictions(gene, y.copy(), full))
        return self._finish("auc", per_target, predictions, plan)

    def _score(
        self,
        gene: str,
        y: np.ndarray,
        ok: np.ndarray,
        prob: np.ndarray,
        plan: SplitPlan,
        n_pos: int,
    ) -> TargetResult:
        o = self.options
        yk = y[ok]
        R, K = plan.repeats, plan.folds
        aucs, ps = np.empty(R), np.empty(R)
        for r in range(R):
            aucs[r], ps[r] = auc_with_p(yk, prob[r], o.alternative)
        fold_auc = np.full((R, K), np.nan)
        a = plan.assignments[:, ok]
        for r in range(R):
            for k in range(K):
                test = a[r] == k
                if test.any():
                    fold_auc[r, k] = auc_with_p(yk[test], prob[r, test], o.alternative)[0]
        return TargetResult(
            metric="auc",
            repeat_scores=repeat_scores(aucs, fold_auc, o.repeat_score),
            fold_scores=fold_auc,
            extra={
                "pooled_scores": _none_if_nan(aucs),
                "p_values": _none_if_nan(ps),
                "significant": significant(ps, o.alpha, o.significance_rule),
                "n": int(ok.sum()),
                "n_mutated": n_pos,
            },
        )

    def describe(self) -> dict[str, Any]:
        o = self.options
        return {
            "estimator": "L1 logistic regression, R glmnet semantics (standardised features, "
            "glmnet lambda sequence, inner cv.glmnet on binomial deviance)",
            "inner_folds": o.inner_folds,
            "lambda_rule": f"lambda.{o.lambda_rule}",
            "nlambda": o.nlambda,
            "lambda_min_ratio": o.lambda_min_ratio
            if o.lambda_min_ratio is not None
            else "glmnet default (0.01 if n < p else 1e-4)",
            "min_positives": o.min_positives,
            "stratify_gene": o.stratify_gene,
            "metric": "ROC AUC of pooled out-of-fold probabilities; p: Mann-Whitney U",
            **self._common_description(),
        }


def make_expression_task(options: LuadExpressionOptions) -> Task:
    return LuadExpressionTask(options)


def make_mutation_task(options: LuadMutationOptions) -> Task:
    return LuadMutationTask(options)


_HINT = (
    "write a cohort TOML ([cohort] with features or slides, mutations, expression) and pass "
    "--dataset cohort.toml; or try --dataset demo"
)

LUAD_TASK_SPECS: list[TaskSpec] = [
    TaskSpec(
        name="luad-expression",
        description="Gene expression from patient features: e1071 SVR per gene, Pearson r "
        "(study exp. 2).",
        metric="pearson_r",
        factory=make_expression_task,
        options_model=LuadExpressionOptions,
        dataset_hint=_HINT,
        demo_dataset="demo-cohort",
    ),
    TaskSpec(
        name="luad-mutation",
        description="Mutation status from patient features: glmnet LASSO per gene, AUC "
        "(study exp. 3).",
        metric="auc",
        factory=make_mutation_task,
        options_model=LuadMutationOptions,
        dataset_hint=_HINT,
        demo_dataset="demo-cohort",
    ),
]
