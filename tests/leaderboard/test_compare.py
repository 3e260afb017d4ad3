"""``bench compare`` end to end on stored runs: real demo runs for crc-tissue, runs with the
LUAD tasks' shapes stored through ``ResultsStore.save_run``; every p-value checked against the
statistics functions or scipy/statsmodels applied to what the store holds."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from histobench.benchmark.store import ResultsStore
from histobench.statistics import (
    corrected_resampled_ttest,
    delong_over_repeats,
    friedman_nemenyi,
)
from tests.conftest import assert_one_line_error
from tests.leaderboard.conftest import run_bench_json
from tests.leaderboard.helpers import expression_run, mutation_run, open_store, patient_plan

PAIR = "effnet-lite0,random-init"


def _compare_json(bench, *args: str) -> dict:
    code, out, err = bench("compare", *args, "--json")
    assert code == 0, err
    return json.loads(out)


def test_compare_json_on_real_runs_equals_corrected_ttest(bench, demo_home, demo_records) -> None:
    c = _compare_json(bench, "--task", "crc-tissue", "--extractors", PAIR)
    for key in ("p_value", "statistic", "df", "effect_size", "ci_low", "ci_high", "test",
                "run_ids", "plan_id", "per_target"):  # fmt: skip
        assert key in c, key
    a, b = demo_records["effnet-lite0"], demo_records["random-init"]
    assert c["test"] == "nb-ttest"
    assert c["run_ids"] == [a["run_id"], b["run_id"]]
    assert c["plan_id"] == a["plan_id"] == b["plan_id"]
    # Recompute from the fold scores `bench run --json` printed and the plan in the store.
    with ResultsStore(demo_home / "results.sqlite") as store:
        n_train, n_test = store.load_plan(a["plan_id"]).mean_train_test_sizes()
    ref = corrected_resampled_ttest(a["fold_scores"], b["fold_scores"], n_train, n_test)
    assert c["p_value"] == pytest.approx(ref.p_value, rel=1e-12)
    assert c["statistic"] == pytest.approx(ref.statistic, rel=1e-12)
    assert c["df"] == 3 * 3 - 1
    # And by hand: t = mean(d) / sqrt((1/J + n_test/n_train) var(d)), 54 tiles in 3 folds.
    assert (n_train, n_test) == (36.0, 18.0)
    d = (np.array(a["fold_scores"]) - np.array(b["fold_scores"])).ravel()
    t = d.mean() / math.sqrt((1 / 9 + 18 / 36) * d.var(ddof=1))
    assert c["statistic"] == pytest.approx(t, rel=1e-12)
    assert c["p_value"] == pytest.approx(2 * stats.t.sf(abs(t), 8), rel=1e-10)
    assert c["effect_size"] == pytest.approx(d.mean(), rel=1e-12)
    assert c["ci_low"] < c["effect_size"] < c["ci_high"]
    # One quantity: the displayed run scores, their difference, and an interval around it.
    assert (c["mean_a"], c["mean_b"]) == (a["mean"], b["mean"])
    assert c["difference"] == c["mean_a"] - c["mean_b"]
    assert c["difference"] == pytest.approx(d.mean(), abs=1e-12)
    assert -1.0 <= c["ci_low"] <= c["difference"] <= c["ci_high"] <= 1.0
    assert c["evaluation_id"] == a["evaluation_id"] == b["evaluation_id"]

    # Per class: corrected test on the per-class fold scores, Holm/BH as statsmodels, sign test.
    pt = c["per_target"]
    assert pt["available"] and pt["test"] == "corrected" and pt["n_targets"] == 9
    names = [r["target"] for r in pt["targets"]]
    assert names == list(a["per_target"])
    p = np.array([r["p"] for r in pt["targets"]], dtype=float)
    ok = np.isfinite(p)
    assert np.allclose(np.array([r["p_holm"] for r in pt["targets"]], float)[ok],
                       multipletests(p[ok], method="holm")[1])  # fmt: skip
    assert np.allclose(np.array([r["p_bh"] for r in pt["targets"]], float)[ok],
                       multipletests(p[ok], method="fdr_bh")[1])  # fmt: skip
    diffs = [
        np.mean(a["per_target"][t]["scores"]) - np.mean(b["per_target"][t]["scores"]) for t in names
    ]
    assert pt["n_improved"] == sum(x > 0 for x in diffs)
    assert pt["n_worse"] == sum(x < 0 for x in diffs)
    n = pt["n_improved"] + pt["n_worse"]
    assert pt["sign_test"]["p_value"] == pytest.approx(
        stats.binomtest(pt["n_improved"], n, 0.5).pvalue
    )


def test_compare_human_output(bench, demo_home) -> None:
    code, out, err = bench("compare", "--task", "crc-tissue", "--extractors", PAIR)
    assert code == 0, err
    assert "corrected_resampled_ttest" in out and "p = " in out and "sign test" in out


def test_wilcoxon_and_permutation_on_real_runs_equal_scipy(bench, demo_home, demo_records) -> None:
    a = np.array(demo_records["effnet-lite0"]["scores"])
    b = np.array(demo_records["random-init"]["scores"])
    w = _compare_json(bench, "--task", "crc-tissue", "--extractors", PAIR, "--test", "wilcoxon")
    assert np.any(a != b)  # the demo extractors differ, so the test has something to rank
    assert w["p_value"] == pytest.approx(stats.wilcoxon(a, b).pvalue)
    perm = _compare_json(
        bench, "--task", "crc-tissue", "--extractors", PAIR, "--test", "permutation"
    )
    ref = stats.permutation_test(
        (a, b), lambda x, y: np.mean(x - y), permutation_type="samples", n_resamples=np.inf
    )
    assert perm["p_value"] == pytest.approx(ref.pvalue)
    assert perm["test"] == "permutation" and perm["per_target"]["test"] == "permutation"


def test_delong_refused_for_accuracy_task(bench, demo_home) -> None:
    code, _, err = bench(
        "compare", "--task", "crc-tissue", "--extractors", PAIR, "--test", "delong"
    )
    assert code != 0
    assert_one_line_error(err, "delong", "accuracy")


def test_refuses_runs_on_different_split_plans(
    bench, demo_home, demo_records, small_config
) -> None:
    """A newer random-init run with --folds 2 is on another plan: refused, nothing changed."""
    new = run_bench_json(
        demo_home, "--extractor", "random-init", "--task", "crc-tissue", "--dataset", "demo",
        "--config", str(small_config), "--repeats", "3", "--folds", "2",
    )  # fmt: skip
    old = demo_records["effnet-lite0"]
    assert new["plan_id"] != old["plan_id"]
    db = demo_home / "results.sqlite"
    with ResultsStore(db) as store:
        before = [r.run_id for r in store.runs()]
    code, out, err = bench("compare", "--task", "crc-tissue", "--extractors", PAIR, "--json")
    assert code != 0 and out == ""
    assert_one_line_error(err, old["run_id"], new["run_id"], old["plan_id"], new["plan_id"])
    with ResultsStore(db) as store:
        assert [r.run_id for r in store.runs()] == before


def test_refuses_different_seed_plans(bench, hb_home: Path) -> None:
    with open_store(hb_home) as store:
        expression_run(store, "e1", "ftx", patient_plan(4, 3, seed=0), 0.5, "2026-01-01T00:00:01")
        expression_run(
            store, "e2", "imgnet", patient_plan(4, 3, seed=7), 0.4, "2026-01-01T00:00:02"
        )
    code, _, err = bench("compare", "--task", "luad-expression", "--extractors", "ftx,imgnet")
    assert code != 0
    assert_one_line_error(err, "e1", "e2", "plan.plan_id", patient_plan(4, 3, seed=0).plan_id,
                          patient_plan(4, 3, seed=7).plan_id)  # fmt: skip


def test_precomputed_features_of_two_extractors_are_paired(bench, hb_home: Path) -> None:
    """Two feature folders over the same patients and labels differ in their files (their data
    fingerprints), not in their evaluation: they are compared (pairing must not be too strict)."""
    plan = patient_plan(4, 3)
    with open_store(hb_home) as store:
        expression_run(store, "e1", "ftx", plan, 0.5, "2026-01-01T00:00:01", fingerprint="ftx-h5")
        expression_run(store, "e2", "imgnet", plan, 0.4, "2026-01-01T00:00:02", seed=2,
                       fingerprint="imgnet-h5")  # fmt: skip
        a, b = store.get_run("e1"), store.get_run("e2")
    assert a.dataset_fingerprint != b.dataset_fingerprint
    assert a.evaluation_id == b.evaluation_id is not None
    c = _compare_json(bench, "--task", "luad-expression", "--extractors", "ftx,imgnet")
    assert c["run_ids"] == ["e1", "e2"] and c["evaluation_id"] == a.evaluation_id


@pytest.mark.parametrize(
    ("task", "options", "field"),
    [
        ("luad-mutation", {"lambda_rule": "1se"}, "options.lambda_rule"),
        ("luad-mutation", {"inner_folds": 5}, "options.inner_folds"),
        ("luad-expression", {"epsilon": 0.2}, "options.epsilon"),
        ("luad-expression", {"cost": 2.0}, "options.cost"),
        ("luad-expression", {"alternative": "two-sided"}, "options.alternative"),
        ("luad-expression", {"genes": ["GENE00", "GENE01"]}, "options.genes"),
    ],
)
def test_refuses_runs_with_other_task_options(bench, hb_home: Path, task, options, field) -> None:
    """Same plan and labels, one task option changed: refused, naming that option, exit ≠ 0."""
    plan = patient_plan(4, 3)
    make = expression_run if task == "luad-expression" else mutation_run
    with open_store(hb_home) as store:
        make(store, "r1", "ftx", plan, 0.5, "2026-01-01T00:00:01")
        make(store, "r2", "imgnet", plan, 0.4, "2026-01-01T00:00:02", seed=2, options=options)
        before = [r.run_id for r in store.runs()]
    code, out, err = bench("compare", "--task", task, "--extractors", "ftx,imgnet", "--json")
    assert code != 0 and out == ""
    assert_one_line_error(err, "r1", "r2", "evaluated differently", field)
    with open_store(hb_home) as store:
        assert [r.run_id for r in store.runs()] == before  # nothing stored was touched


def test_options_that_cannot_change_a_score_do_not_unpair(bench, hb_home: Path) -> None:
    plan = patient_plan(4, 3)
    with open_store(hb_home) as store:
        mutation_run(store, "m1", "ftx", plan, 1.0, "2026-01-01T00:00:01")
        mutation_run(store, "m2", "imgnet", plan, 0.5, "2026-01-01T00:00:02", seed=2,
                     options={"n_jobs": 1})  # fmt: skip
    c = _compare_json(bench, "--task", "luad-mutation", "--extractors", "ftx,imgnet")
    assert c["run_ids"] == ["m1", "m2"]


def test_refuses_runs_scored_against_other_labels(bench, hb_home: Path) -> None:
    """Same plan (same patients), same options, other expression values: refused."""
    plan = patient_plan(4, 3)
    with open_store(hb_home) as store:
        expression_run(store, "e1", "ftx", plan, 0.5, "2026-01-01T00:00:01")
        expression_run(store, "e2", "imgnet", plan, 0.4, "2026-01-01T00:00:02", truth_seed=5)
    code, _, err = bench("compare", "--task", "luad-expression", "--extractors", "ftx,imgnet")
    assert code != 0
    assert_one_line_error(err, "e1", "e2", "labels.values")
    # The runs of one identity can still be picked explicitly.
    with open_store(hb_home) as store:
        expression_run(store, "e3", "imgnet", plan, 0.4, "2026-01-01T00:00:03", seed=3)
        wanted = store.get_run("e1").evaluation_id
    c = _compare_json(bench, "--task", "luad-expression", "--extractors", "ftx,imgnet",
                      "--evaluation", wanted[:8])  # fmt: skip
    assert c["run_ids"] == ["e1", "e3"]


def test_runs_without_an_identity_are_refused(bench, hb_home: Path) -> None:
    """A run stored before identities were recorded pairs with nothing (one line, rerun it)."""
    from tests.leaderboard.helpers import _save

    plan = patient_plan(4, 3)
    with open_store(hb_home) as store:
        result = expression_run(store, "e1", "ftx", plan, 0.5, "2026-01-01T00:00:01")
        _save(store, "old", "imgnet", "luad-expression", plan, result, "2026-01-01T00:00:02")
        store.conn.execute("UPDATE runs SET evaluation_id = NULL, evaluation = NULL"
                           " WHERE run_id = 'old'")  # fmt: skip
        store.conn.commit()
    code, _, err = bench("compare", "--task", "luad-expression", "--extractors", "ftx,imgnet")
    assert code != 0
    assert_one_line_error(err, "old", "without an evaluation identity", "bench run")


def test_one_repeat(bench, demo_home, small_config) -> None:
    """With R = 1 the corrected test still runs on the K folds (df = K − 1); tests on
    per-repeat scores need at least 2 repeats and say so plainly."""
    recs = {
        e: run_bench_json(
            demo_home,
            "--extractor",
            e,
            "--task",
            "crc-tissue",
            "--dataset",
            "demo",
            "--config",
            str(small_config),
            "--repeats",
            "1",
            "--folds",
            "3",
        )  # fmt: skip
        for e in ("effnet-lite0", "random-init")
    }
    c = _compare_json(bench, "--task", "crc-tissue", "--extractors", PAIR)
    assert c["repeats"] == 1 and c["df"] == 2
    with ResultsStore(demo_home / "results.sqlite") as store:
        n_train, n_test = store.load_plan(c["plan_id"]).mean_train_test_sizes()
    a, b = recs["effnet-lite0"], recs["random-init"]
    ref = corrected_resampled_ttest(a["fold_scores"], b["fold_scores"], n_train, n_test)
    assert c["p_value"] == pytest.approx(ref.p_value, rel=1e-12)
    for test in ("wilcoxon", "permutation"):
        code, _, err = bench(
            "compare", "--task", "crc-tissue", "--extractors", PAIR, "--test", test
        )
        assert code != 0
        assert_one_line_error(err, "at least 2 repeats", "have 1")


def test_unknown_extractor_and_bad_list(bench, demo_home) -> None:
    code, _, err = bench("compare", "--task", "crc-tissue", "--extractors", "effnet-lite0,nope")
    assert code != 0
    assert_one_line_error(err, "nope", "crc-tissue", "bench run")
    code, _, err = bench("compare", "--task", "crc-tissue", "--extractors", "effnet-lite0")
    assert code == 2
    assert_one_line_error(err, "at least two")
    code, _, err = bench("compare", "--task", "crc-tissue", "--extractors", "a,a")
    assert code == 2
    assert_one_line_error(err, "more than once")


def test_three_extractors_every_pair_with_holm_and_friedman_over_targets(
    bench, hb_home: Path
) -> None:
    """Default verdict for ≥ 3 extractors: every pair under the corrected t-test, Holm over all
    pairs. Friedman/Nemenyi only with ``--blocks targets`` (blocks = genes, never repeats)."""
    plan = patient_plan(6, 3)
    names = ("ftx", "imgnet", "rand")
    with open_store(hb_home) as store:
        for i, (name, skill) in enumerate(zip(names, (0.5, 0.35, 0.1), strict=True)):
            expression_run(store, f"e{i}", name, plan, skill, f"2026-01-01T00:00:0{i}", seed=i)
        runs = {r.extractor: r for r in store.latest_runs("luad-expression")}
        targets = {n: store.target_results(runs[n].run_id) for n in names}
    n_train, n_test = plan.mean_train_test_sizes()
    c = _compare_json(bench, "--task", "luad-expression", "--extractors", "ftx,imgnet,rand")
    assert c["test"] == "pairwise" and c["friedman"] is None and c["cd_diagram"] is None
    assert c["best"] == "ftx"
    pairs = [("ftx", "imgnet"), ("ftx", "rand"), ("imgnet", "rand")]
    assert [tuple(p["extractors"]) for p in c["pairwise"]] == pairs
    ps = []
    for row, (a, b) in zip(c["pairwise"], pairs, strict=True):
        ref = corrected_resampled_ttest(runs[a].fold_scores, runs[b].fold_scores, n_train, n_test)
        assert row["p_value"] == pytest.approx(ref.p_value)
        assert row["difference"] == row["mean_a"] - row["mean_b"]
        assert (row["mean_a"], row["mean_b"]) == (runs[a].mean, runs[b].mean)
        ps.append(ref.p_value)
    assert [p["p_holm"] for p in c["pairwise"]] == pytest.approx(
        list(multipletests(ps, method="holm")[1])
    )

    # Friedman over the 12 genes: blocks are per-gene means, equal to scipy's test on them.
    t = _compare_json(bench, "--task", "luad-expression", "--extractors", "ftx,imgnet,rand",
                      "--blocks", "targets")  # fmt: skip
    table = np.array([[targets[n][g].mean for n in names] for g in targets["ftx"]])
    ref = stats.friedmanchisquare(*table.T)
    f = t["friedman"]
    assert f["p_value"] == pytest.approx(ref.pvalue) and f["statistic"] == pytest.approx(
        ref.statistic
    )
    assert f["nemenyi"]["n_blocks"] == 12 and "12 gene targets" in f["blocking_rule"]
    fn = friedman_nemenyi(table, list(names))
    assert f["nemenyi"]["critical_difference"] == pytest.approx(fn.critical_difference)
    # Repeats as blocks would be a 6-row table: the test must not be computed on it.
    assert f["nemenyi"]["n_blocks"] != plan.repeats
    png = Path(t["cd_diagram"])
    assert png.is_file() and png.read_bytes()[:4] == b"\x89PNG"
    assert png.parent == hb_home / "reports"


def test_repeats_are_never_friedman_blocks() -> None:
    """The engine itself refuses CV repeats as blocks (not only the command line)."""
    from histobench.leaderboard.many import block_table
    from histobench.plugins.errors import ConfigError

    with pytest.raises(ConfigError, match="repeats re-split the same items"):
        block_table(None, [], "repeats")  # type: ignore[arg-type]


def test_one_quantity_displayed_difference_is_the_tested_one(bench, hb_home: Path) -> None:
    """mean_a and mean_b are the runs' displayed scores; difference = mean_a − mean_b; the
    p-value and CI are about that difference (the CI brackets it)."""
    plan = patient_plan(5, 3)
    with open_store(hb_home) as store:
        expression_run(store, "e1", "ftx", plan, 0.5, "2026-01-01T00:00:01", seed=1)
        expression_run(store, "e2", "imgnet", plan, 0.3, "2026-01-01T00:00:02", seed=2)
        a, b = store.get_run("e1"), store.get_run("e2")
    for test in ("nb-ttest", "permutation"):
        c = _compare_json(bench, "--task", "luad-expression", "--extractors", "ftx,imgnet",
                          "--test", test)  # fmt: skip
        assert (c["mean_a"], c["mean_b"]) == (a.mean, b.mean)
        assert c["difference"] == c["mean_a"] - c["mean_b"]
        assert c["tested_difference"] == pytest.approx(c["difference"], abs=1e-12)
        assert c["ci_low"] <= c["difference"] <= c["ci_high"]
        assert "quantity_note" not in c
    assert "independent" in c["assumption"]  # permutation over repeats says what it assumes


def test_difference_ci_stays_within_the_metric_range(bench, hb_home: Path) -> None:
    """AUC fold scores near 1 against near 0 with one bad fold: the corrected t interval of
    the difference would pass +1; the reported one is clipped to [−1, 1] and says so."""
    from tests.leaderboard.helpers import stored_fold_runs

    fold_a = np.full((3, 3), 0.99)
    fold_a[0, 0] = 0.1
    fold_b = np.full((3, 3), 0.02)
    with open_store(hb_home) as store:
        stored_fold_runs(store, fold_a, fold_b)
        n_train, n_test = store.load_plan(store.get_run("a").plan_id).mean_train_test_sizes()
    raw = corrected_resampled_ttest(fold_a, fold_b, n_train, n_test)
    assert raw.ci_high > 1.0  # the unclipped interval leaves the range
    c = _compare_json(bench, "--task", "luad-mutation", "--extractors", "ftx,imgnet")
    assert -1.0 <= c["ci_low"] <= c["difference"] <= c["ci_high"] <= 1.0
    assert c["ci_high"] == 1.0 and c["ci_low"] == pytest.approx(raw.ci_low)
    assert "clipped" in c["ci_method"]


def test_delong_on_auc_task(bench, hb_home: Path) -> None:
    plan = patient_plan(4, 3)
    with open_store(hb_home) as store:
        mutation_run(store, "m1", "ftx", plan, 1.0, "2026-01-01T00:00:01", seed=1)
        mutation_run(store, "m2", "imgnet", plan, 0.6, "2026-01-01T00:00:02", seed=2)
        pa, pb = store.predictions("m1"), store.predictions("m2")
    c = _compare_json(
        bench, "--task", "luad-mutation", "--extractors", "ftx,imgnet", "--test", "delong"
    )
    pt = c["per_target"]
    assert pt["test"] == "delong" and pt["n_targets"] == 5
    for row in pt["targets"]:
        g = row["target"]
        ref = delong_over_repeats(pa[g].y_true, pa[g].y_pred, pb[g].y_pred)
        assert row["p"] == pytest.approx(ref.p_value)
        assert row["auc_a"] == pytest.approx(ref.auc_a)
    p = np.array([r["p"] for r in pt["targets"]])
    assert [r["p_holm"] for r in pt["targets"]] == pytest.approx(
        list(multipletests(p, method="holm")[1])
    )
    # Several genes: the headline is the exact sign test on genes improved.
    assert c["headline_test"] == "sign_test"
    k = pt["n_improved"]
    assert c["p_value"] == pytest.approx(stats.binomtest(k, k + pt["n_worse"]).pvalue)

    # One gene: the headline is that gene's DeLong test.
    with open_store(hb_home) as store:
        mutation_run(store, "m3", "ftx", plan, 1.0, "2026-01-01T00:00:03", n_genes=1, seed=1)
        mutation_run(store, "m4", "imgnet", plan, 0.6, "2026-01-01T00:00:04", n_genes=1, seed=2)
        pa, pb = store.predictions("m3"), store.predictions("m4")
    one = _compare_json(
        bench, "--task", "luad-mutation", "--extractors", "ftx,imgnet", "--test", "delong"
    )
    ref = delong_over_repeats(pa["TP53"].y_true, pa["TP53"].y_pred, pb["TP53"].y_pred)
    assert one["headline_test"] == "delong_over_repeats"
    assert one["p_value"] == pytest.approx(ref.p_value)
    assert one["effect_size"] == pytest.approx(ref.effect_size)


def test_per_target_falls_back_to_wilcoxon_without_fold_scores(bench, hb_home: Path) -> None:
    plan = patient_plan(7, 3)
    with open_store(hb_home) as store:
        mutation_run(store, "m1", "ftx", plan, 1.0, "2026-01-01T00:00:01", fold_scores=False)
        mutation_run(store, "m2", "imgnet", plan, 0.5, "2026-01-01T00:00:02", seed=3,
                     fold_scores=False)  # fmt: skip
        ta, tb = store.target_results("m1"), store.target_results("m2")
    c = _compare_json(bench, "--task", "luad-mutation", "--extractors", "ftx,imgnet")
    pt = c["per_target"]
    assert pt["test"] == "wilcoxon" and "Wilcoxon" in pt["note"]
    for row in pt["targets"]:
        g = row["target"]
        assert row["p"] == pytest.approx(
            stats.wilcoxon(ta[g].repeat_scores, tb[g].repeat_scores).pvalue
        )
