"""Paired comparison of stored runs: the engine behind ``bench compare``.

Loads the newest run of each named extractor for a task, proves they are paired (same split
plan and same data fingerprint, else a one-line refusal), and runs the chosen test:

- ``nb-ttest`` (default): Nadeau & Bengio corrected resampled t-test on the R×K fold scores,
  n_train/n_test from the stored plan;
- ``wilcoxon`` and ``permutation``: on the R per-repeat scores (needs R ≥ 2);
- ``delong``: AUC tasks only; DeLong per target on the stored out-of-fold scores.

Per-target tests (classes, genes) use the same family of test, Holm and Benjamini–Hochberg
adjustment and an exact sign test on the number of targets improved. With three or more
extractors the headline is the Friedman test with Nemenyi post-hoc; the blocking rule is stated
in the result (default: blocks are CV repeats, because every extractor is scored on the same
partition in repeat r, so a repeat is a matched block; ``blocks="targets"`` uses per-target
means instead). Every result is a JSON-ready dict.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from histobench.benchmark.store import ResultsStore, RunRecord
from histobench.plugins.errors import ConfigError, DataError, HistobenchError
from histobench.statistics import (
    StatisticsError,
    TestResult,
    benjamini_hochberg,
    corrected_resampled_ttest,
    delong_over_repeats,
    friedman_nemenyi,
    holm,
    paired_permutation_test,
    per_target_comparison,
    sign_test,
    wilcoxon_signed_rank,
)
from histobench.statistics.results import _jsonable

TESTS = ("nb-ttest", "wilcoxon", "permutation", "delong")
BLOCKS = ("repeats", "targets")
AUC_METRICS = ("auc", "roc_auc", "auroc")
ALPHA = 0.05


class ComparisonError(HistobenchError):
    """Runs that cannot be compared (missing, unpaired, wrong test for the metric)."""


def is_auc_metric(metric: str) -> bool:
    return metric.lower() in AUC_METRICS


# --------------------------------------------------------------------------------------------
# Loading and pairing
# --------------------------------------------------------------------------------------------


def parse_extractors(text: str | Sequence[str]) -> list[str]:
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text)]
    names = [n for n in names if n]
    if len(names) < 2:
        raise ConfigError(
            f"--extractors needs at least two names separated by commas, got {text!r}"
        )
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"--extractors names {', '.join(dupes)} more than once")
    return names


def latest_runs_for(store: ResultsStore, task: str, extractors: Sequence[str]) -> list[RunRecord]:
    """The newest stored run of each extractor on ``task``, in the order given."""
    latest = {r.extractor: r for r in store.latest_runs(task)}
    missing = [e for e in extractors if e not in latest]
    if missing:
        have = ", ".join(sorted(latest)) or "none"
        raise ComparisonError(
            f"no stored run of {', '.join(missing)} on task {task} (stored: {have});"
            f" run `bench run --extractor {missing[0]} --task {task}` first"
        )
    return [latest[e] for e in extractors]


def check_paired(runs: Sequence[RunRecord]) -> None:
    """Refuse runs that are not paired fold by fold: different split plan or different data."""
    ref = runs[0]
    for other in runs[1:]:
        if other.plan_id != ref.plan_id:
            raise ComparisonError(
                f"cannot compare unpaired runs: run {ref.run_id} ({ref.extractor}) used split plan"
                f" {ref.plan_id} ({ref.repeats}x{ref.folds}) but run {other.run_id}"
                f" ({other.extractor}) used plan {other.plan_id} ({other.repeats}x{other.folds});"
                " rerun them with the same data, --repeats, --folds and --seed"
            )
        if other.dataset_fingerprint != ref.dataset_fingerprint:
            raise ComparisonError(
                f"cannot compare runs on different data: run {ref.run_id} ({ref.extractor}) used"
                f" data {ref.dataset_fingerprint} but run {other.run_id} ({other.extractor}) used"
                f" {other.dataset_fingerprint} (both on plan {ref.plan_id})"
            )


def plan_sizes(store: ResultsStore, run: RunRecord) -> tuple[float, float]:
    plan = store.load_plan(run.plan_id)
    if plan is None:
        raise DataError(f"split plan {run.plan_id} of run {run.run_id} is missing from the store")
    return plan.mean_train_test_sizes()


# --------------------------------------------------------------------------------------------
# Two extractors
# --------------------------------------------------------------------------------------------


def headline_test(
    store: ResultsStore, a: RunRecord, b: RunRecord, test: str, *, seed: int = 0
) -> TestResult:
    """The chosen test on the headline metric of two paired runs (A − B)."""
    if test == "nb-ttest":
        n_train, n_test = plan_sizes(store, a)
        return corrected_resampled_ttest(a.fold_scores, b.fold_scores, n_train, n_test)
    if test in ("wilcoxon", "permutation"):
        if a.repeats < 2:
            raise ComparisonError(
                f"--test {test} works on per-repeat scores and needs at least 2 repeats; runs"
                f" {a.run_id} and {b.run_id} have {a.repeats} (use --test nb-ttest, or rerun"
                " with --repeats 2 or more)"
            )
        if test == "wilcoxon":
            return wilcoxon_signed_rank(a.repeat_scores, b.repeat_scores)
        return paired_permutation_test(a.repeat_scores, b.repeat_scores, seed=seed)
    raise ConfigError(f"--test must be one of {', '.join(TESTS)}, not {test!r}")


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
    ta = store.target_results(a.run_id)
    if not ta:
        return {"available": False, "note": "the runs store no per-target scores"}
    has_folds = all(t.fold_scores is not None for t in ta.values()) and all(
        t.fold_scores is not None for t in store.target_results(b.run_id).values()
    )
    note = ""
    if test == "nb-ttest" and has_folds:
        kind, scores = "corrected", _target_scores(store, a, b, folds=True)
    else:
        kind = "permutation" if test == "permutation" else "wilcoxon"
        if test == "nb-ttest":
            note = "per-target fold scores not stored: Wilcoxon over per-repeat scores instead"
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
        scores.names, scores.a, scores.b, test=kind, n_train=n_train, n_test=n_test,
        alpha=ALPHA, greater_is_better=a.greater_is_better, seed=seed,
    )  # fmt: skip
    mean_a = np.nanmean(scores.a.reshape(len(scores.names), -1), axis=1)
    mean_b = np.nanmean(scores.b.reshape(len(scores.names), -1), axis=1)
    targets = []
    for row, ma, mb in zip(comp.rows(), mean_a, mean_b, strict=True):
        targets.append({"target": row.pop("target"), "mean_a": ma, "mean_b": mb, **row})
    return _jsonable(
        {
            "available": True,
            "test": comp.test,
            "alpha": ALPHA,
            "note": note,
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
                "target": t, "auc_a": r.auc_a, "auc_b": r.auc_b, "effect_size": r.effect_size,
                "ci_low": r.ci_low, "ci_high": r.ci_high, "statistic": r.statistic, "p": p,
                "mean_difference": d, "median_repeat_p": r.median_p, "note": "",
            }  # fmt: skip
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


def compare_pair(
    store: ResultsStore, a: RunRecord, b: RunRecord, test: str = "nb-ttest", *, seed: int = 0
) -> dict[str, Any]:
    """Headline and per-target comparison of two paired runs; JSON-ready."""
    if test not in TESTS:
        raise ConfigError(f"--test must be one of {', '.join(TESTS)}, not {test!r}")
    check_paired([a, b])
    if test == "delong" and not is_auc_metric(a.metric):
        raise ComparisonError(
            f"--test delong compares AUCs, but task {a.task} is scored by {a.metric};"
            " use nb-ttest, wilcoxon or permutation"
        )
    targets = per_target(store, a, b, test, seed=seed)
    if test == "delong":
        head, headline_note = _delong_headline(targets)
    else:
        head, headline_note = headline_test(store, a, b, test, seed=seed), ""
    n_train, n_test = plan_sizes(store, a)
    out = {
        "task": a.task,
        "metric": a.metric,
        "greater_is_better": a.greater_is_better,
        "extractors": [a.extractor, b.extractor],
        "run_ids": [a.run_id, b.run_id],
        "plan_id": a.plan_id,
        "dataset": a.dataset,
        "dataset_fingerprint": a.dataset_fingerprint,
        "repeats": a.repeats,
        "folds": a.folds,
        "n_train": n_train,
        "n_test": n_test,
        "means": {a.extractor: a.mean, b.extractor: b.mean},
        **head.to_dict(),
        "test": test,
        "headline_test": head.test,
        "headline_note": headline_note,
        "effect_size_meaning": (
            "proportion of targets improved by A"
            if head.test == "sign_test"
            else f"{a.metric} of {a.extractor} minus {b.extractor}"
        ),
        "per_target": targets,
    }
    return _jsonable(out)


def _delong_headline(targets: dict[str, Any]) -> tuple[TestResult, str]:
    """One AUC target: its DeLong test is the headline. Several: the exact sign test on the
    number of targets whose AUC improved (DeLong itself is a per-target test)."""
    rows = [r for r in targets["targets"] if r.get("p") is not None]
    if not rows:
        raise ComparisonError("DeLong could not be computed for any target (too few positives)")
    if targets["n_targets"] == 1:
        r = rows[0]
        res = TestResult(
            "delong_over_repeats", r["statistic"], r["p"], None, r["effect_size"], r["ci_low"],
            r["ci_high"], 0, "two-sided", "DeLong on scores averaged over repeats",
        )  # fmt: skip
        return res, "single target: DeLong's test on it"
    if targets["sign_test"] is None:
        raise ComparisonError("every target tied between the two runs: nothing to test")
    s = targets["sign_test"]
    res = TestResult(
        "sign_test", s["statistic"], s["p_value"], None, s["effect_size"], s["ci_low"],
        s["ci_high"], s["n"], "two-sided", s["notes"],
    )  # fmt: skip
    return res, (
        f"{targets['n_targets']} targets: headline is the sign test on targets improved;"
        " per-target DeLong p-values (Holm, BH) are under per_target"
    )


# --------------------------------------------------------------------------------------------
# Three or more extractors
# --------------------------------------------------------------------------------------------


def block_table(
    store: ResultsStore, runs: Sequence[RunRecord], blocks: str
) -> tuple[np.ndarray, str]:
    """(blocks, extractors) scores for Friedman, and the blocking rule in words."""
    if blocks == "repeats":
        table = np.stack([r.repeat_scores for r in runs], axis=1)
        rule = (
            f"blocks = the {table.shape[0]} CV repeats of the shared plan (each extractor scored"
            " on the same partition per repeat); repeats reuse the same items, so read the"
            " p-value as consistency across re-splits, not generalisation to new data"
        )
        return table, rule
    if blocks == "targets":
        per = [store.target_results(r.run_id) for r in runs]
        names = [t for t in per[0] if all(t in p for p in per[1:])]
        if not names:
            raise ComparisonError("--blocks targets: the runs share no per-target scores")
        table = np.array([[p[t].mean for p in per] for t in names])
        rule = f"blocks = the {len(names)} targets (mean over repeats per target)"
        return table, rule
    raise ConfigError(f"--blocks must be one of {', '.join(BLOCKS)}, not {blocks!r}")


def compare_many(
    store: ResultsStore,
    runs: Sequence[RunRecord],
    test: str = "nb-ttest",
    *,
    blocks: str = "repeats",
    figure_dir: Path | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Friedman + Nemenyi over ≥ 3 paired runs, plus each extractor against the best (by mean)
    under ``test`` with Holm adjustment. Writes the CD diagram when ``figure_dir`` is given."""
    check_paired(runs)
    if test == "delong" and not is_auc_metric(runs[0].metric):
        raise ComparisonError(
            f"--test delong compares AUCs, but task {runs[0].task} is scored by"
            f" {runs[0].metric}; use nb-ttest, wilcoxon or permutation"
        )
    names = [r.extractor for r in runs]
    table, rule = block_table(store, runs, blocks)
    try:
        fn = friedman_nemenyi(
            table, names, alpha=ALPHA, greater_is_better=runs[0].greater_is_better
        )
    except StatisticsError as err:
        raise ComparisonError(
            f"{err} (with --blocks {blocks}; try --blocks targets, or more repeats)"
        ) from err
    sign = 1.0 if runs[0].greater_is_better else -1.0
    best = max(runs, key=lambda r: sign * r.mean)
    pairwise = []
    for r in runs:
        if r is best:
            continue
        c = compare_pair(store, best, r, test, seed=seed)
        pairwise.append(
            {
                k: c[k]
                for k in (
                    "extractors",
                    "run_ids",
                    "headline_test",
                    "statistic",
                    "p_value",
                    "df",
                    "effect_size",
                    "ci_low",
                    "ci_high",
                )
            }  # fmt: skip
        )
    adj = holm(np.array([np.nan if p["p_value"] is None else p["p_value"] for p in pairwise]))
    for p, h in zip(pairwise, adj, strict=True):
        p["p_holm"] = None if not np.isfinite(h) else float(h)
    cd_png = None
    if figure_dir is not None:
        from histobench.leaderboard.figures import critical_difference_diagram, save_figure

        fig = critical_difference_diagram(
            fn,
            title=f"{runs[0].task}: Friedman p = {fn.friedman.p_value:.2g},"
            f" {fn.n_blocks} {blocks}, α = {fn.alpha:g}",
        )
        png, _ = save_figure(fig, figure_dir / f"cd-{runs[0].task}-{runs[0].plan_id}")
        cd_png = str(png)
    f = fn.friedman.to_dict()
    return _jsonable(
        {
            "task": runs[0].task,
            "metric": runs[0].metric,
            "greater_is_better": runs[0].greater_is_better,
            "extractors": names,
            "run_ids": [r.run_id for r in runs],
            "plan_id": runs[0].plan_id,
            "dataset": runs[0].dataset,
            "dataset_fingerprint": runs[0].dataset_fingerprint,
            "repeats": runs[0].repeats,
            "folds": runs[0].folds,
            "means": {r.extractor: r.mean for r in runs},
            "test": "friedman",
            "pairwise_test": test,
            "p_value": f["p_value"],
            "statistic": f["statistic"],
            "df": f["df"],
            "effect_size": f["effect_size"],
            "ci_low": None,
            "ci_high": None,
            "effect_size_meaning": "Kendall's W (agreement of the rankings across blocks)",
            "blocks": blocks,
            "blocking_rule": rule,
            "friedman": f,
            "nemenyi": {
                "average_ranks": dict(zip(names, fn.average_ranks, strict=True)),
                "critical_difference": fn.critical_difference,
                "alpha": fn.alpha,
                "n_blocks": fn.n_blocks,
                "pairwise_p": {
                    a: dict(zip(names, row, strict=True))
                    for a, row in zip(names, fn.pairwise_p, strict=True)
                },
                "not_different_groups": [list(g) for g in fn.cliques()],
                "iman_davenport_f": fn.iman_davenport_f,
                "iman_davenport_p": fn.iman_davenport_p,
            },
            "best": best.extractor,
            "pairwise_vs_best": pairwise,
            "cd_diagram": cd_png,
        }
    )


def compare(
    store: ResultsStore,
    task: str,
    extractors: Sequence[str],
    test: str = "nb-ttest",
    *,
    blocks: str = "repeats",
    figure_dir: Path | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """``bench compare`` without the CLI: latest runs of ``extractors`` on ``task``."""
    if test not in TESTS:
        raise ConfigError(f"--test must be one of {', '.join(TESTS)}, not {test!r}")
    names = parse_extractors(extractors)
    runs = latest_runs_for(store, task, names)
    if len(runs) == 2:
        return compare_pair(store, runs[0], runs[1], test, seed=seed)
    return compare_many(store, runs, test, blocks=blocks, figure_dir=figure_dir, seed=seed)
