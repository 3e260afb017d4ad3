"""Options of the LUAD tasks and the genes-file reader."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from histobench.plugins.errors import DataError
from histobench.plugins.specs import PluginOptions

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
    repeat_score: Literal["fold-mean"] = Field(
        "fold-mean",
        description="A repeat's score is the mean of its K per-fold scores: the quantity the "
        "paired tests and CIs use, and unbiased under the null. The study's pooled score (one "
        "r / AUC of all K folds' predictions) sits below chance under the null at small n "
        "(BENCHMARKS.md, null calibration); it is kept per gene as 'pooled_scores', not shown "
        "as the run's score.",
    )
    n_jobs: int = Field(-1, description="Parallel fold fits (-1: all cores).")


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
