"""Paired comparison of stored runs: the engine behind ``bench compare``.

Loads the newest run of each named extractor for a task, proves they are paired (equal
evaluation identity, else a one-line refusal naming the first field that differs, see
``pairing.py``) and tests the difference of the scores the runs display:

- ``auto`` (default): the test the runs' task chose for its quantity (``paired_test`` in the run
  details): ``jackknife`` for luad-expression, ``nb-ttest`` otherwise;
- ``nb-ttest``: Nadeau & Bengio corrected resampled t-test on the R×K fold scores,
  n_train/n_test from the stored plan;
- ``jackknife``: the unit (patient) jackknife of the fold-mean difference, recomputed from the
  stored out-of-fold predictions (``unit_jackknife.py``; r and AUC tasks);
- ``wilcoxon`` and ``permutation``: on the R per-repeat scores (needs R ≥ 2). They treat the
  repeats as independent samples, which re-splits of the same items are not: the output says
  so in ``assumption``;
- ``delong``: AUC tasks only; DeLong per target on the stored out-of-fold scores.

``mean_a`` and ``mean_b`` are exactly the runs' displayed scores, ``difference`` is
``mean_a − mean_b``, and ``p_value``/``ci_low``/``ci_high`` are about that difference (``ci_of``
says precisely what the interval estimates; it is clipped to the metric's range). Three or more
extractors: see ``many.py``. Every result is a JSON-ready dict.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from histobench.benchmark.store import ResultsStore, RunRecord
from histobench.leaderboard.many import BLOCKS, compare_many
from histobench.leaderboard.pairing import (
    ComparisonError,
    check_paired,
    clip_to,
    difference_range,
    is_auc_metric,
    latest_runs_for,
    parse_extractors,
    plan_sizes,
)
from histobench.leaderboard.per_target import REPEAT_ASSUMPTION, per_target
from histobench.leaderboard.unit_jackknife import default_test, jackknife_headline
from histobench.plugins.errors import ConfigError
from histobench.statistics import (
    TestResult,
    corrected_resampled_ttest,
    paired_permutation_test,
    wilcoxon_signed_rank,
)
from histobench.statistics.results import _jsonable

TESTS = ("auto", "nb-ttest", "jackknife", "wilcoxon", "permutation", "delong")
# What each headline test's interval estimates (the difference A − B in every case but the
# Wilcoxon test's Hodges–Lehmann estimate).
CI_OF = {
    "corrected_resampled_ttest": "mean of the paired fold differences A − B (corrected t)",
    "unit_jackknife": "mean of the paired fold differences A − B (unit jackknife)",
    "paired_permutation_test": "mean of the paired per-repeat differences A − B (Student t)",
    "wilcoxon_signed_rank": "Hodges-Lehmann pseudo-median of the per-repeat differences A − B",
    "delong_over_repeats": "AUC difference A − B of the repeat-averaged scores (DeLong)",
}
# Displayed and tested differences may part by rounding only; more is reported in words.
QUANTITY_TOLERANCE = 1e-9

__all__ = ["BLOCKS", "TESTS", "ComparisonError", "compare", "compare_pair", "is_auc_metric"]


def resolve_test(test: str, run: RunRecord) -> str:
    """``auto`` is the test the run's task chose for its quantity."""
    return default_test(run) if test == "auto" else test


def _check_test(test: str, metric: str, task: str) -> None:
    if test not in TESTS:
        raise ConfigError(f"--test must be one of {', '.join(TESTS)}, not {test!r}")
    if test == "delong" and not is_auc_metric(metric):
        raise ComparisonError(
            f"--test delong compares AUCs, but task {task} is scored by {metric};"
            " use nb-ttest, wilcoxon or permutation"
        )


def headline_test(
    store: ResultsStore, a: RunRecord, b: RunRecord, test: str, *, seed: int = 0
) -> TestResult:
    """The chosen test on the headline metric of two paired runs (A − B)."""
    if test == "nb-ttest":
        n_train, n_test = plan_sizes(store, a)
        return corrected_resampled_ttest(a.fold_scores, b.fold_scores, n_train, n_test)
    if test == "jackknife":
        return jackknife_headline(store, a, b)
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


def _delong_headline(targets: dict[str, Any]) -> tuple[TestResult, str]:
    """One AUC target: its DeLong test is the headline. Several: the exact sign test on the
    number of targets whose AUC improved (DeLong itself is a per-target test)."""
    rows = [r for r in targets["targets"] if r.get("p") is not None]
    if not rows:
        raise ComparisonError("DeLong could not be computed for any target (too few positives)")
    if targets["n_targets"] == 1:
        r = rows[0]
        res = TestResult(
            test="delong_over_repeats",
            statistic=r["statistic"],
            p_value=r["p"],
            df=None,
            effect_size=r["effect_size"],
            ci_low=r["ci_low"],
            ci_high=r["ci_high"],
            n=0,
            alternative="two-sided",
            notes="DeLong on scores averaged over repeats",
        )
        return res, "single target: DeLong's test on it"
    if targets["sign_test"] is None:
        raise ComparisonError("every target tied between the two runs: nothing to test")
    s = targets["sign_test"]
    res = TestResult(
        test="sign_test",
        statistic=s["statistic"],
        p_value=s["p_value"],
        df=None,
        effect_size=s["effect_size"],
        ci_low=s["ci_low"],
        ci_high=s["ci_high"],
        n=s["n"],
        alternative="two-sided",
        notes=s["notes"],
    )
    return res, (
        f"{targets['n_targets']} targets: headline is the sign test on targets improved;"
        " per-target DeLong p-values (Holm, BH) are under per_target"
    )


def difference_summary(a: RunRecord, b: RunRecord, head: TestResult) -> dict[str, Any]:
    """The displayed scores, their difference, and the headline test's interval for it."""
    mean_a, mean_b = float(a.mean), float(b.mean)
    difference = mean_a - mean_b
    out: dict[str, Any] = {"mean_a": mean_a, "mean_b": mean_b, "difference": difference}
    if head.test not in CI_OF:  # the sign test estimates a proportion, not the difference
        out.update(ci_low=None, ci_high=None, ci_of="none: the headline test is the sign test")
        return out
    bounds = difference_range(a.metric)
    low, high, clipped = clip_to(head.ci_low, head.ci_high, bounds)
    out.update(ci_low=low, ci_high=high, ci_of=CI_OF[head.test])
    out["ci_method"] = "95% interval of the test" + (
        f"; clipped to the range of a {a.metric} difference [{bounds[0]:g}, {bounds[1]:g}]"
        if clipped and bounds
        else ""
    )
    tested = head.effect_size
    out["tested_difference"] = tested
    if math.isfinite(tested) and abs(tested - difference) > QUANTITY_TOLERANCE:
        out["quantity_note"] = (
            f"the test estimates {tested:.6g} where the displayed means differ by"
            f" {difference:.6g}: the runs' repeat scores are not the means of their folds"
            " (or some folds could not be scored)"
        )
    return out


def compare_pair(
    store: ResultsStore, a: RunRecord, b: RunRecord, test: str = "auto", *, seed: int = 0
) -> dict[str, Any]:
    """Headline and per-target comparison of two paired runs; JSON-ready."""
    check_paired([a, b])
    test = resolve_test(test, a)
    _check_test(test, a.metric, a.task)
    targets = per_target(store, a, b, test, seed=seed)
    if test == "delong":
        head, headline_note = _delong_headline(targets)
    else:
        head, headline_note = headline_test(store, a, b, test, seed=seed), ""
    n_train, n_test = plan_sizes(store, a)
    assumption = f"{head.test} {REPEAT_ASSUMPTION}" if test in ("wilcoxon", "permutation") else ""
    out = {
        "task": a.task,
        "metric": a.metric,
        "greater_is_better": a.greater_is_better,
        "extractors": [a.extractor, b.extractor],
        "run_ids": [a.run_id, b.run_id],
        "evaluation_id": a.evaluation_id,
        "plan_id": a.plan_id,
        "dataset": a.dataset,
        "repeats": a.repeats,
        "folds": a.folds,
        "n_train": n_train,
        "n_test": n_test,
        "means": {a.extractor: a.mean, b.extractor: b.mean},
        **head.to_dict(),
        **difference_summary(a, b, head),
        "test": test,
        "headline_test": head.test,
        "headline_note": headline_note,
        "assumption": assumption,
        "effect_size_meaning": (
            "proportion of targets improved by A"
            if head.test == "sign_test"
            else f"{a.metric} of {a.extractor} minus {b.extractor}"
        ),
        "per_target": targets,
    }
    return _jsonable(out)


def compare(
    store: ResultsStore,
    task: str,
    extractors: Any,
    test: str = "auto",
    *,
    blocks: str = "none",
    evaluation: str | None = None,
    figure_dir: Path | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """``bench compare`` without the CLI: the latest runs of ``extractors`` on ``task`` (with
    ``evaluation``, the latest of that evaluation identity)."""
    if test not in TESTS:
        raise ConfigError(f"--test must be one of {', '.join(TESTS)}, not {test!r}")
    names = parse_extractors(extractors)
    runs = latest_runs_for(store, task, names, evaluation)
    if len(runs) == 2:
        return compare_pair(store, runs[0], runs[1], test, seed=seed)
    test = resolve_test(test, runs[0])
    _check_test(test, runs[0].metric, task)

    def pair(a: RunRecord, b: RunRecord) -> dict[str, Any]:
        return compare_pair(store, a, b, test, seed=seed)

    return compare_many(store, runs, pair, test=test, blocks=blocks, figure_dir=figure_dir)
