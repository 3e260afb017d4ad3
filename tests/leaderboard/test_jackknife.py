"""The unit jackknife as the LUAD tasks' paired test: ``bench compare`` (default ``auto``), the
per-gene tests and the leaderboard's p-values and CIs, each checked against
``statistics.unit_jackknife_test`` applied to what the store holds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from histobench.leaderboard.tables import build_leaderboard, corrected_ci
from histobench.statistics.jackknife import unit_jackknife_test
from histobench.tasks.luad import (
    LuadExpressionOptions,
    LuadMutationOptions,
    make_expression_task,
    make_mutation_task,
)
from tests.leaderboard.helpers import expression_run, open_store, patient_plan

JACKKNIFE = {"paired_test": "jackknife"}


def _compare_json(bench, *args: str) -> dict:
    code, out, err = bench("compare", *args, "--json")
    assert code == 0, err
    return json.loads(out)


def test_luad_tasks_name_the_test_their_null_calibration_chose() -> None:
    """The LUAD runs name their paired test in their details (the tasks' description): the
    jackknife for expression (5.5 % of 1,770 null gene tests), the corrected t-test for
    mutation (5.7 % of 297, where the jackknife rejects 10.2 %)."""
    assert make_expression_task(LuadExpressionOptions()).describe()["paired_test"] == "jackknife"
    assert make_mutation_task(LuadMutationOptions()).describe()["paired_test"] == "nb-ttest"


def _stored(store, run_id: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    preds = store.predictions(run_id)
    genes = list(store.target_results(run_id))
    y = np.stack([preds[g].y_true for g in genes])
    return y, np.stack([preds[g].y_pred for g in genes]), np.asarray(genes)


def test_compare_defaults_to_the_task_test_on_the_displayed_quantity(bench, hb_home: Path) -> None:
    plan = patient_plan(4, 5)
    with open_store(hb_home) as store:
        expression_run(store, "e1", "ftx", plan, 0.5, "2026-01-01T00:00:01", seed=1,
                       details=JACKKNIFE)  # fmt: skip
        expression_run(store, "e2", "imgnet", plan, 0.3, "2026-01-01T00:00:02", seed=2,
                       details=JACKKNIFE)  # fmt: skip
        a, b = store.get_run("e1"), store.get_run("e2")
        y, pa, genes = _stored(store, "e1")
        _, pb, _ = _stored(store, "e2")
    ref = unit_jackknife_test(y, pa, pb, plan.assignments, "pearson_r")
    c = _compare_json(bench, "--task", "luad-expression", "--extractors", "ftx,imgnet")
    assert c["test"] == "jackknife" and c["headline_test"] == "unit_jackknife"
    assert (c["mean_a"], c["mean_b"]) == (a.mean, b.mean)
    # The jackknife recomputes the fold means from the stored predictions: the same quantity.
    assert c["tested_difference"] == pytest.approx(c["difference"], abs=1e-12)
    assert "quantity_note" not in c
    assert c["p_value"] == pytest.approx(ref.p_value)
    assert (c["ci_low"], c["ci_high"]) == pytest.approx((ref.ci_low, ref.ci_high))
    assert "unit jackknife" in c["ci_of"]
    pt = c["per_target"]
    assert pt["test"] == "unit jackknife" and pt["n_targets"] == len(genes)
    for row in pt["targets"]:
        g = list(genes).index(row["target"])
        one = unit_jackknife_test(y[g], pa[g], pb[g], plan.assignments, "pearson_r")
        assert row["p"] == pytest.approx(one.p_value)
        assert row["difference"] == pytest.approx(one.effect_size, abs=1e-12)
    # An explicit test still wins over the task's choice.
    nb = _compare_json(bench, "--task", "luad-expression", "--extractors", "ftx,imgnet",
                       "--test", "nb-ttest")  # fmt: skip
    assert nb["headline_test"] == "corrected_resampled_ttest"
    assert nb["p_value"] != pytest.approx(c["p_value"])


def test_leaderboard_p_values_and_cis_use_the_task_test(hb_home: Path) -> None:
    plan = patient_plan(3, 5)
    with open_store(hb_home) as store:
        for i, (name, skill) in enumerate((("ftx", 0.6), ("imgnet", 0.3), ("random", 0.0))):
            expression_run(store, f"e{i}", name, plan, skill, f"2026-01-01T00:00:0{i + 1}",
                           seed=i + 1, details=JACKKNIFE)  # fmt: skip
        rows = {r["extractor"]: r for r in build_leaderboard(store, "luad-expression").rows}
        y, p_best, _ = _stored(store, "e0")
        for i, name in ((1, "imgnet"), (2, "random")):
            _, p_other, _ = _stored(store, f"e{i}")
            ref = unit_jackknife_test(y, p_best, p_other, plan.assignments, "pearson_r")
            assert rows[name]["test_vs_best"] == "unit jackknife"
            assert rows[name]["p_vs_best"] == pytest.approx(ref.p_value)
        own = unit_jackknife_test(y, p_best, None, plan.assignments, "pearson_r")
        assert (rows["ftx"]["ci95_low"], rows["ftx"]["ci95_high"]) == pytest.approx(
            (own.ci_low, own.ci_high)
        )
        run = store.get_run("e0")
        n_train, n_test = plan.mean_train_test_sizes()
        assert (rows["ftx"]["ci95_low"], rows["ftx"]["ci95_high"]) != pytest.approx(
            corrected_ci(run, n_train, n_test)
        )


def test_markdown_table_names_the_test_behind_its_p_values(hb_home: Path) -> None:
    """The footnote under each table names the test its p-values and CIs came from: the
    jackknife for a task that chose it, the corrected t-test otherwise (it once said the
    corrected t-test for every task)."""
    notes = {}
    for details in (JACKKNIFE, {}):
        with open_store(hb_home / str(len(notes))) as store:
            for i, name in enumerate(("ftx", "imgnet")):
                expression_run(store, f"e{i}", name, patient_plan(3, 5), 0.5 - 0.3 * i,
                               f"2026-01-01T00:00:0{i + 1}", seed=i + 1, details=details)  # fmt: skip
            lb = build_leaderboard(store, "luad-expression")
        assert {r["paired_test"] for r in lb.rows} == {details.get("paired_test", "nb-ttest")}
        notes[bool(details)] = next(
            line for line in lb.markdown().splitlines() if line.startswith("p vs best (ftx):")
        )
    assert "unit (patient) jackknife" in notes[True] and "Nadeau" not in notes[True]
    assert "corrected resampled t-test" in notes[False] and "jackknife" not in notes[False]
