"""Scores of out-of-fold predictions: Pearson r and ROC AUC with their p-values, per fold and
pooled, and the rule that calls a gene significant.

A repeat's score is the mean of its K fold scores, the quantity that the corrected
repeated-CV t-test and the leaderboard's CI are computed on. The pooled score (one r / AUC of
all K folds' predictions together, the study's protocol) is kept per gene for reference only:
each fold's model has its own intercept, anti-correlated with its test fold's label mean, so
pooling sits below chance under the null.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
from scipy import stats

from histobench.tasks.luad.options import Alternative, SignificanceRule


@contextmanager
def quiet_nan_warnings() -> Iterator[None]:
    """Silence 'Mean of empty slice' where nothing can be scored (NaN is the answer)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        yield


def fold_mean(fold_scores: np.ndarray) -> np.ndarray:
    """Per-repeat score: the mean of the repeat's finite fold scores (R, K) → (R,)."""
    with quiet_nan_warnings():
        return np.nanmean(fold_scores, axis=1)


def none_if_nan(values: np.ndarray) -> list[float | None]:
    return [None if not math.isfinite(float(v)) else float(v) for v in np.ravel(values)]


def significant(
    p_values: np.ndarray, alpha: float, rule: SignificanceRule, inclusive: bool = False
) -> bool:
    """Apply the recorded significance rule to one gene's per-repeat p-values (``inclusive``:
    p <= alpha, as for Benjamini-Hochberg adjusted values; else p < alpha)."""
    p = np.asarray(p_values, dtype=float)
    p = np.where(np.isfinite(p), p, 1.0)  # an unscoreable repeat counts as not significant
    hit = p <= alpha if inclusive else p < alpha
    if rule == "majority":
        return bool(hit.mean() > 0.5)
    if rule == "median":
        median = np.median(p)
        return bool(median <= alpha if inclusive else median < alpha)
    return bool(hit.all())


def _t_p_values(r: np.ndarray, n: np.ndarray | int, alternative: Alternative) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        t = r * np.sqrt((n - 2) / np.maximum(1.0 - r * r, 1e-300))
        df = np.maximum(np.asarray(n) - 2, 1)
    p = stats.t.sf(t, df) if alternative == "greater" else 2.0 * stats.t.sf(np.abs(t), df)
    return np.where(np.isfinite(r), p, np.nan)


def pearson_with_p(
    y: np.ndarray, pred: np.ndarray, alternative: Alternative
) -> tuple[np.ndarray, np.ndarray]:
    """Pearson r of ``y`` (N,) with each row of ``pred`` (R, N), and its p-value (t test)."""
    yc = y - y.mean()
    pc = pred - pred.mean(axis=1, keepdims=True)
    denom = np.sqrt((yc @ yc) * (pc * pc).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.clip(np.where(denom > 0, (pc @ yc) / denom, np.nan), -1.0, 1.0)
    return r, _t_p_values(r, y.shape[0], alternative)


def masked_pearson(
    Y: np.ndarray, P: np.ndarray, alternative: Alternative, min_n: int = 3
) -> tuple[np.ndarray, np.ndarray]:
    """Pearson r and p of each column of ``Y`` (n, G; NaN = no value) with the same of ``P``.

    Equal to :func:`pearson_with_p` on each column's rows with a value; NaN where a column has
    fewer than ``min_n`` values or no variance.
    """
    mask = np.isfinite(Y)
    n = mask.sum(axis=0).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        my = np.where(mask, Y, 0.0).sum(axis=0) / n
        mp = np.where(mask, P, 0.0).sum(axis=0) / n
        yc = np.where(mask, Y - my, 0.0)
        pc = np.where(mask, P - mp, 0.0)
        denom = np.sqrt((yc * yc).sum(axis=0) * (pc * pc).sum(axis=0))
        r = np.where((denom > 0) & (n >= min_n), (yc * pc).sum(axis=0) / denom, np.nan)
    r = np.clip(r, -1.0, 1.0)
    return r, _t_p_values(r, n, alternative)


def auc(y: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC, ties counted half (as scikit-learn); NaN when one class is absent."""
    pos = y == 1
    n1, n0 = int(pos.sum()), int((~pos).sum())
    if n1 == 0 or n0 == 0:
        return math.nan
    ranks = stats.rankdata(score)
    return float((ranks[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def auc_with_p(y: np.ndarray, score: np.ndarray, alternative: Alternative) -> tuple[float, float]:
    """ROC AUC (ties count half, as scikit-learn) and the Mann–Whitney p-value."""
    value = auc(y, score)
    if not math.isfinite(value):
        return math.nan, math.nan
    pos = y == 1
    test = stats.mannwhitneyu(score[pos], score[~pos], alternative=alternative)
    return value, float(test.pvalue)


def fold_aucs(y: np.ndarray, prob: np.ndarray, assignments: np.ndarray, folds: int) -> np.ndarray:
    """AUC of each test fold alone: ``prob`` and ``assignments`` are (R, N) → (R, K)."""
    R = prob.shape[0]
    out = np.full((R, folds), np.nan)
    for r in range(R):
        for k in range(folds):
            test = assignments[r] == k
            if test.any():
                out[r, k] = auc(y[test], prob[r, test])
    return out
