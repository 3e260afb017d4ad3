"""Per-target comparisons (classes, genes) of two paired runs, and per-target significance
counts of one run.

Per target, the same family of test as the headline (corrected t-test on fold scores; the unit
jackknife of the fold-mean difference from stored predictions; DeLong on stored out-of-fold
scores for AUCs), Holm and Benjamini–Hochberg adjustment, and the exact sign
test on the number of targets improved. A run's "significant" targets are counted after
Benjamini–Hochberg across targets (q ≤ 0.05 by default); the uncorrected count is labelled so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from histobench.benchmark.store import ResultsStore, RunRecord
from histobench.leaderboard.pairing import ComparisonError, plan_sizes
from histobench.leaderboard.unit_jackknife import jackknife_per_target
from histobench.plugins.errors import HistobenchError
from histobench.plugins.specs import TargetResult
from histobench.statistics import (
    StatisticsError,
    TestResult,
    benjamini_hochberg,
    delong_over_repeats,
    holm,
    per_target_comparison,
    sign_test,
)
from histobench.statistics.results import _jsonable

ALPHA = 0.05
FDR_Q = 0.05  # Benjamini–Hochberg level of the per-target significance counts
REPEAT_ASSUMPTION = (
    "treats the R CV repeats as independent samples; they re-split the same items, so read p"
    " as consistency across re-splits, not as evidence about new data"
)


@dataclass(frozen=True)
class _TargetScores:
    names: list[str]
    a: np.ndarray  # (T, R) or (T, R, K)
    b: np.ndarray
    missing: list[str]


def _target_scores(store: ResultsStore, a: RunRecord, b: RunRecord, folds: bool) -> _TargetScores:
    ta, tb = store.target_results(a.run_id), store.target_results(b.run_id)
    names = [t for t in ta if t in tb]
    missing = sorted(set(ta) ^ set(tb))
    if folds:
        xa = np.stack([np.asarray(ta[t].fold_scores, float) for t in names]) if names else None
        xb = np.stack([np.asarray(tb[t].fold_scores, float) for t in names]) if names else None
    else:
        xa = np.stack([np.asarray(ta[t].repeat_scores, float) for t in names]) if names else None
        xb = np.stack([np.asarray(tb[t].repeat_scores, float) for t in names]) if names else None
    empty = np.zeros((0, a.repeats) if not folds else (0, a.repeats, a.folds))
    return _TargetScores(names, empty if xa is None else xa, empty if xb is None else xb, missing)


def per_target(
    store: ResultsStore, a: RunRecord, b: RunRecord, test: str, *, seed: int = 0
) -> dict[str, Any]:
    """Per-target paired tests (same family as the headline test), Holm, BH and the sign test.

    Returns ``{"available": False, "note": …}`` when the runs store no per-target scores or the
    scores cannot carry the test (e.g. one repeat and no per-target fold scores).
    """
    if test == "delong":
        return _per_target_delong(store, a, b)
    ta, tb = store.target_results(a.run_id), store.target_results(b.run_id)
    if not ta:
        return {"available": False, "note": "the runs store no per-target scores"}
    has_folds = all(t.fold_scores is not None for t in ta.values()) and all(
        t.fold_scores is not None for t in tb.values()
    )
    note, assumption = "", ""
    precomputed = None
    if test == "jackknife":
        if not has_folds:
            return {"available": False, "note": "the unit jackknife needs per-target fold scores"}
        kind, scores = "unit jackknife", _target_scores(store, a, b, folds=True)
        names, found = jackknife_per_target(store, a, b)
        by_name = dict(zip(names, found, strict=True))
        precomputed = [_as_result(by_name.get(t, "no stored predictions")) for t in scores.names]
    elif test == "nb-ttest" and has_folds:
        kind, scores = "corrected", _target_scores(store, a, b, folds=True)
    else:
        kind = "permutation" if test == "permutation" else "wilcoxon"
        if test == "nb-ttest":
            note = "per-target fold scores not stored: Wilcoxon over per-repeat scores instead"
        assumption = f"{kind} per target over repeats {REPEAT_ASSUMPTION}"
        if a.repeats < 2:
            return {
                "available": False,
                "note": f"per-target {kind} tests need at least 2 repeats; these runs have 1",
            }
        scores = _target_scores(store, a, b, folds=False)
    if not scores.names:
        return {"available": False, "note": "the two runs share no targets"}
    n_train, n_test = plan_sizes(store, a) if kind == "corrected" else (None, None)
    comp = per_target_comparison(
        scores.names,
        scores.a,
        scores.b,
        test=kind,
        n_train=n_train,
        n_test=n_test,
        alpha=ALPHA,
        greater_is_better=a.greater_is_better,
        seed=seed,
        results=precomputed,
    )
    targets = []
    for row in comp.rows():
        name = row.pop("target")
        # The per-target scores each run displays, and their difference; the test's own
        # estimate of it is ``mean_difference`` (equal when repeats are means of their folds).
        ma, mb = ta[name].mean, tb[name].mean
        targets.append({"target": name, "mean_a": ma, "mean_b": mb, "difference": ma - mb, **row})
    return _jsonable(
        {
            "available": True,
            "test": comp.test,
            "alpha": ALPHA,
            "note": note,
            "assumption": assumption,
            "targets": targets,
            "n_targets": len(scores.names),
            "n_improved": comp.n_improved,
            "n_worse": comp.n_worse,
            "n_tied": comp.n_tied,
            "n_better_holm": comp.n_better_holm,
            "n_worse_holm": comp.n_worse_holm,
            "n_better_bh": comp.n_better_bh,
            "n_worse_bh": comp.n_worse_bh,
            "sign_test": None if comp.sign is None else comp.sign.to_dict(),
            "unpaired_targets": scores.missing,
        }
    )


def _as_result(found: TestResult | str) -> TestResult:
    """A target without a test (too few mutated patients, no predictions) as a NaN result."""
    if isinstance(found, TestResult):
        return found
    nan = math.nan
    return TestResult("unit_jackknife", nan, nan, None, nan, nan, nan, 0, "two-sided", found)


def _scores_for_auc(pred: Any) -> np.ndarray:
    """Out-of-fold scores for AUC: a 2-D y_score (decision values) if stored, else y_pred
    (probabilities); (R, N) either way."""
    ys = pred.y_score
    if ys is not None and np.asarray(ys).ndim == 2:
        return np.asarray(ys, float)
    return np.asarray(pred.y_pred, float)


def _per_target_delong(store: ResultsStore, a: RunRecord, b: RunRecord) -> dict[str, Any]:
    pa, pb = store.predictions(a.run_id), store.predictions(b.run_id)
    names = [t for t in pa if t in pb]
    if not names:
        raise ComparisonError(
            f"--test delong needs stored out-of-fold predictions; runs {a.run_id} and"
            f" {b.run_id} share none"
        )
    rows: list[dict[str, Any]] = []
    pvals: list[float] = []
    diffs: list[float] = []
    for t in names:
        ya, yb = np.asarray(pa[t].y_true), np.asarray(pb[t].y_true)
        if ya.shape != yb.shape or not np.array_equal(ya, yb):
            raise ComparisonError(
                f"runs {a.run_id} and {b.run_id} hold different patients or labels for target"
                f" {t}; DeLong needs the same patients"
            )
        try:
            r = delong_over_repeats(ya, _scores_for_auc(pa[t]), _scores_for_auc(pb[t]))
            p, d = r.p_value, r.mean_auc_difference
            row = {
                "target": t,
                "auc_a": r.auc_a,
                "auc_b": r.auc_b,
                "effect_size": r.effect_size,
                "ci_low": r.ci_low,
                "ci_high": r.ci_high,
                "statistic": r.statistic,
                "p": p,
                "mean_difference": d,
                "median_repeat_p": r.median_p,
                "note": "",
            }
        except (
            HistobenchError,
            StatisticsError,
        ) as err:  # a gene with too few mutated patients in this cohort
            p, d = math.nan, math.nan
            row = {"target": t, "p": p, "mean_difference": d, "note": str(err)}
        rows.append(row)
        pvals.append(p)
        diffs.append(d)
    p_holm, p_bh = holm(np.array(pvals)), benjamini_hochberg(np.array(pvals))
    sign = 1.0 if a.greater_is_better else -1.0
    signed = np.array(diffs) * sign
    better, worse = signed > 0, signed < 0
    with np.errstate(invalid="ignore"):
        sh, sb = p_holm <= ALPHA, p_bh <= ALPHA
    for row, ph, pbh in zip(rows, p_holm, p_bh, strict=True):
        row["p_holm"], row["p_bh"] = ph, pbh
    n_imp, n_wor = int(better.sum()), int(worse.sum())
    return _jsonable(
        {
            "available": True,
            "test": "delong",
            "alpha": ALPHA,
            "note": "DeLong per target on out-of-fold scores averaged over repeats; improvement"
            " judged on the mean per-repeat AUC difference",
            "targets": rows,
            "n_targets": len(names),
            "n_improved": n_imp,
            "n_worse": n_wor,
            "n_tied": int((signed == 0).sum()),
            "n_better_holm": int((better & sh).sum()),
            "n_worse_holm": int((worse & sh).sum()),
            "n_better_bh": int((better & sb).sum()),
            "n_worse_bh": int((worse & sb).sum()),
            "sign_test": sign_test(n_imp, n_imp + n_wor).to_dict() if n_imp + n_wor else None,
            "unpaired_targets": sorted(set(pa) ^ set(pb)),
        }
    )


def _rule_holds(p: np.ndarray, threshold: float, rule: str, *, inclusive: bool) -> np.ndarray:
    """The run's significance rule over repeats, per target row of ``p`` (targets × repeats);
    an unscoreable repeat counts as not significant."""
    p = np.where(np.isfinite(p), p, np.inf)
    hit = p <= threshold if inclusive else p < threshold
    if rule == "median":
        med = np.median(p, axis=1)
        return np.asarray(med <= threshold if inclusive else med < threshold)
    if rule == "all":
        return np.asarray(hit.all(axis=1))
    return np.asarray(hit.mean(axis=1) > 0.5)  # "majority", the default


def significance_counts(run: RunRecord, targets: dict[str, TargetResult]) -> dict[str, Any] | None:
    """How many targets of one run are significant, after Benjamini–Hochberg across targets.

    Uses the per-repeat p-values the task stored (``extra["p_values"]``): within each repeat the
    targets' p-values are BH-adjusted, then the run's own rule over repeats (majority, median,
    all) is applied at q ≤ ``FDR_Q``. The uncorrected count (p < alpha, the same rule) is given
    beside it, labelled so. None when the task stores no per-target p-values.
    """
    named: dict[str, list[Any]] = {
        n: list(t.extra["p_values"]) for n, t in targets.items() if t.extra.get("p_values")
    }
    if not named:
        return None
    width = max(len(v) for v in named.values())
    p = np.full((len(named), width), np.nan)
    for i, values in enumerate(named.values()):
        p[i, : len(values)] = [np.nan if v is None else float(v) for v in values]
    q = np.column_stack([benjamini_hochberg(p[:, r]) for r in range(width)])
    significance = run.details.get("significance", {})
    rule = str(significance.get("rule", "majority"))
    alpha = float(significance.get("alpha", ALPHA))
    bh = _rule_holds(q, FDR_Q, rule, inclusive=True)
    raw = _rule_holds(p, alpha, rule, inclusive=False)
    names = list(named)
    return {
        "n_targets": len(names),
        "n_significant": int(bh.sum()),
        "fraction_significant": float(bh.mean()),
        "significant": [n for n, s in zip(names, bh, strict=True) if s],
        "q": FDR_Q,
        "method": f"Benjamini-Hochberg across {len(names)} targets within each repeat (q ≤"
        f" {FDR_Q:g}), then the run's rule over repeats ({rule})",
        "n_significant_uncorrected": int(raw.sum()),
        "uncorrected_method": f"p < {alpha:g} without multiplicity correction ({rule})",
    }
