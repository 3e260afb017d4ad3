"""luad-expression and luad-mutation: patient features → per-gene SVR / LASSO, the study's
experiments 2 and 3.

Units are the patients that have both features and labels (a patient's vector is the mean of
all its tiles over all its slides; the runner pools it). Which patients were dropped on either
side, which genes were skipped and why, and every protocol choice (estimator parameters, the
rule that calls a gene "significant") are stored in ``TaskResult.details``.

Each test fold is scored alone (Pearson r or AUC); a repeat's score is the mean of its K fold
scores and the run's headline averages the scored genes, so the displayed mean is exactly the
quantity the paired tests use. Modules: ``options`` (option models), ``base`` (patient
alignment, gene selection, headline), ``scoring`` (metrics and p-values), ``expression`` and
``mutation`` (the two tasks).
"""

from __future__ import annotations

from histobench.plugins.specs import Task, TaskSpec
from histobench.tasks.luad.base import LuadTask, headline
from histobench.tasks.luad.expression import LuadExpressionTask
from histobench.tasks.luad.mutation import LuadMutationTask
from histobench.tasks.luad.options import (
    LuadExpressionOptions,
    LuadMutationOptions,
    LuadOptions,
    read_gene_list,
)
from histobench.tasks.luad.scoring import (
    auc_with_p,
    fold_aucs,
    fold_mean,
    masked_pearson,
    pearson_with_p,
    significant,
)

__all__ = [
    "LUAD_TASK_SPECS",
    "LuadExpressionOptions",
    "LuadExpressionTask",
    "LuadMutationOptions",
    "LuadMutationTask",
    "LuadOptions",
    "LuadTask",
    "auc_with_p",
    "fold_aucs",
    "fold_mean",
    "headline",
    "masked_pearson",
    "pearson_with_p",
    "read_gene_list",
    "significant",
]


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
