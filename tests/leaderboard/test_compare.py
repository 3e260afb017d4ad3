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


def test_refuses_different_seed_plans_and_different_data(bench, hb_home: Path) -> None:
    with open_store(hb_home) as store:
        expression_run(store, "e1", "ftx", patient_plan(4, 3, seed=0), 0.5, "2026-01-01T00:00:01")
        expression_run(
            store, "e2", "imgnet", patient_plan(4, 3, seed=7), 0.4, "2026-01-01T00:00:02"
        )
    code, _, err = bench("compare", "--task", "luad-expression", "--extractors", "ftx,imgnet")
    assert code != 0
    assert_one_line_error(err, "e1", "e2", patient_plan(4, 3, seed=0).plan_id,
                          patient_plan(4, 3, seed=7).plan_id)  # fmt: skip

    # Same plan id, different data fingerprint: also refused.
    from tests.leaderboard.helpers import _save

    with open_store(hb_home) as store:
        plan = patient_plan(4, 3, seed=0)
        result = expression_run(store, "e3", "imgnet", plan, 0.4, "2026-01-01T00:00:03")
        _save(store, "e4", "imgnet", "luad-expression", plan, result, "2026-01-01T00:00:04",
              fingerprint="other-cohort")  # fmt: skip
    code, _, err = bench("compare", "--task", "luad-expression", "--extractors", "ftx,imgnet")
    assert code != 0
    assert_one_line_error(err, "e1", "e4", "different data", "other-cohort")


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


def test_friedman_nemenyi_with_three_extractors(bench, hb_home: Path) -> None:
    plan = patient_plan(6, 3)
    with open_store(hb_home) as store:
        for i, (name, skill) in enumerate((("ftx", 0.5), ("imgnet", 0.35), ("rand", 0.1))):
            expression_run(store, f"e{i}", name, plan, skill, f"2026-01-01T00:00:0{i}", seed=i)
        runs = {r.extractor: r for r in store.latest_runs("luad-expression")}
        n_train, n_test = plan.mean_train_test_sizes()
    c = _compare_json(bench, "--task", "luad-expression", "--extractors", "ftx,imgnet,rand")
    table = np.stack([runs[n].repeat_scores for n in ("ftx", "imgnet", "rand")], axis=1)
    ref = stats.friedmanchisquare(*table.T)
    assert c["test"] == "friedman" and c["blocks"] == "repeats"
    assert c["p_value"] == pytest.approx(ref.pvalue) and c["statistic"] == pytest.approx(
        ref.statistic
    )
    assert "6 CV repeats" in c["blocking_rule"]
    fn = friedman_nemenyi(table, ["ftx", "imgnet", "rand"])
    assert c["nemenyi"]["critical_difference"] == pytest.approx(fn.critical_difference)
    assert c["nemenyi"]["average_ranks"] == {"ftx": 1.0, "imgnet": 2.0, "rand": 3.0}
    png = Path(c["cd_diagram"])
    assert png.is_file() and png.read_bytes()[:4] == b"\x89PNG"
    assert png.parent == hb_home / "reports"
    # Each challenger against the best under the corrected test, Holm over the two.
    assert c["best"] == "ftx"
    ps = []
    for pw, other in zip(c["pairwise_vs_best"], ("imgnet", "rand"), strict=True):
        ref_t = corrected_resampled_ttest(
            runs["ftx"].fold_scores, runs[other].fold_scores, n_train, n_test
        )
        assert pw["extractors"] == ["ftx", other]
        assert pw["p_value"] == pytest.approx(ref_t.p_value)
        ps.append(ref_t.p_value)
    holm = multipletests(ps, method="holm")[1]
    assert [pw["p_holm"] for pw in c["pairwise_vs_best"]] == pytest.approx(list(holm))

    # Blocking on targets instead: per-gene means are the blocks.
    t = _compare_json(
        bench, "--task", "luad-expression", "--extractors", "ftx,imgnet,rand", "--blocks", "targets"
    )
    assert t["blocks"] == "targets" and t["nemenyi"]["n_blocks"] == 12


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
