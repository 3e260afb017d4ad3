"""Leaderboard content in Markdown, CSV and JSON: ranks, p against the best (corrected test,
Holm), the corrected 95 % CI, per-target detail and provenance."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from histobench.benchmark.store import ResultsStore
from histobench.leaderboard.tables import build_leaderboard, corrected_ci, leaderboard_rows
from histobench.plugins.specs import digest
from histobench.statistics import corrected_resampled_ttest
from tests.conftest import assert_one_line_error
from tests.leaderboard.helpers import expression_run, mutation_run, open_store, patient_plan

CLASSES = ["ADI", "BACK", "DEB", "LYM", "MUC", "MUS", "NORM", "STR", "TUM"]


def test_json_rows_on_real_runs(bench, demo_home, demo_records) -> None:
    code, out, err = bench("leaderboard", "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    rows = {r["extractor"]: r for r in doc["rows"]}
    a, b = demo_records["effnet-lite0"], demo_records["random-init"]
    best, other = (a, b) if a["mean"] >= b["mean"] else (b, a)
    assert rows[best["extractor"]]["rank"] == 1 and rows[other["extractor"]]["rank"] == 2
    with ResultsStore(demo_home / "results.sqlite") as store:
        n_train, n_test = store.load_plan(a["plan_id"]).mean_train_test_sizes()
        run_b = store.get_run(other["run_id"])
    ref = corrected_resampled_ttest(best["fold_scores"], other["fold_scores"], n_train, n_test)
    r = rows[other["extractor"]]
    assert r["p_vs_best"] == pytest.approx(ref.p_value, rel=1e-12)
    assert r["p_holm_vs_best"] == pytest.approx(ref.p_value, rel=1e-12)  # one challenger
    assert r["best"] == best["extractor"]
    assert r["diff_vs_best"] == pytest.approx(other["mean"] - best["mean"])
    assert rows[best["extractor"]]["p_vs_best"] is None  # no p-value against itself
    # Corrected 95 % CI: mean ± t(J-1) sqrt((1/J + n_test/n_train) var(folds)).
    folds = np.array(other["fold_scores"]).ravel()
    half = stats.t.ppf(0.975, 8) * math.sqrt((1 / 9 + n_test / n_train) * folds.var(ddof=1))
    assert (r["ci95_low"], r["ci95_high"]) == pytest.approx(
        (other["mean"] - half, other["mean"] + half)
    )
    assert corrected_ci(run_b, n_train, n_test) == pytest.approx((r["ci95_low"], r["ci95_high"]))
    # Provenance of every row.
    for rec in (a, b):
        row = rows[rec["extractor"]]
        assert row["code_version"] == rec["env"]["code_version"]
        assert row["config_hash"] == digest(rec["config"], length=12)
        assert row["plan_id"] == rec["plan_id"] and row["run_id"] == rec["run_id"]
        assert row["device"] == rec["env"]["device"] and row["precision"] == rec["env"]["precision"]
        assert row["date"] and (row["repeats"], row["folds"]) == (3, 3)
    # Per-class detail: mean accuracy per class per extractor, and the challenger's sign test.
    d = doc["details"]["crc-tissue"]
    assert [t["target"] for t in d["targets"]] == CLASSES
    for t in d["targets"]:
        for rec in (a, b):
            assert t[rec["extractor"]] == pytest.approx(
                np.mean(rec["per_target"][t["target"]]["scores"])
            )
    vs = d["versus_best"][other["extractor"]]
    assert vs["n_targets"] == 9
    assert r["targets_better"] == vs["n_improved"] and r["targets_worse"] == vs["n_worse"]


def test_markdown_and_csv_on_real_runs(bench, demo_home, demo_records, tmp_path: Path) -> None:
    code, md, err = bench("leaderboard", "--format", "md", "--task", "crc-tissue")
    assert code == 0, err
    a, b = demo_records["effnet-lite0"], demo_records["random-init"]
    best, other = (a, b) if a["mean"] >= b["mean"] else (b, a)
    lines = md.splitlines()
    assert lines[0].startswith("### crc-tissue (accuracy")
    assert lines[2] == f"evaluation `{a['evaluation_id']}`: every row below was evaluated alike"
    assert a["evaluation_id"] == b["evaluation_id"]
    header = [c.strip() for c in lines[4].strip("|").split("|")]
    assert header[:6] == [
        "rank",
        "extractor",
        "accuracy mean ± sd",
        "95% CI",
        "p vs best",
        "Holm p",
    ]
    assert {"code", "config", "plan", "date", "device", "precision", "repeats × folds"} <= set(
        header
    )
    first = [c.strip() for c in lines[6].strip("|").split("|")]
    second = [c.strip() for c in lines[7].strip("|").split("|")]
    assert first[:2] == ["1", best["extractor"]] and second[:2] == ["2", other["extractor"]]
    assert first[header.index("p vs best")] == "–"
    assert f"`{a['plan_id']}`" in lines[6] and f"`{a['env']['code_version']}`" in lines[6]
    assert second[header.index("repeats × folds")] == "3 × 3"
    assert "| class | " in md and "| NORM |" in md and "sign test p =" in md

    out = tmp_path / "lb" / "board.csv"
    code, printed, err = bench("leaderboard", "--format", "csv", "--out", out)
    assert code == 0 and str(out) in printed
    df = pd.read_csv(out)
    assert list(df["extractor"]) == [best["extractor"], other["extractor"]]
    assert list(df["rank"]) == [1, 2]
    for col in ("mean", "std", "ci95_low", "ci95_high", "p_vs_best", "p_holm_vs_best",
                "sign_test_p", "code_version", "config_hash", "plan_id", "date", "device",
                "precision", "repeats", "folds"):  # fmt: skip
        assert col in df.columns, col
    assert math.isnan(df["p_vs_best"][0]) and df["p_vs_best"][1] > 0


def test_unknown_task_is_a_one_line_error(bench, demo_home) -> None:
    code, _, err = bench("leaderboard", "--task", "nope", "--format", "md")
    assert code == 2
    assert_one_line_error(err, "nope")


def test_empty_store(bench, hb_home) -> None:
    code, out, _ = bench("leaderboard", "--format", "md")
    assert code == 0 and "No runs stored yet" in out
    code, out, _ = bench("leaderboard", "--format", "json")
    assert json.loads(out) == {"rows": [], "details": {}}


def test_luad_expression_three_extractors(hb_home: Path) -> None:
    plan = patient_plan(6, 3)
    with open_store(hb_home) as store:
        expression_run(store, "e1", "ftx", plan, 0.5, "2026-01-01T00:00:01", seed=1)
        expression_run(store, "e2", "imgnet", plan, 0.4, "2026-01-01T00:00:02", seed=2)
        expression_run(store, "e3", "rand", plan, 0.1, "2026-01-01T00:00:03", seed=3)
        # A run on another plan (other seed) is another evaluation: a table of its own.
        expression_run(store, "e4", "other", patient_plan(6, 3, seed=5), 0.3, "2026-01-01T00:00:04")
        lb = build_leaderboard(store, "luad-expression")
        runs = {r.extractor: r for r in store.latest_runs("luad-expression")}
        ta = store.target_results("e1")
        tb = store.target_results("e2")
    rows = {r["extractor"]: r for r in lb.rows}
    assert [r["extractor"] for r in lb.rows] == ["ftx", "imgnet", "rand", "other"]
    assert [r["rank"] for r in lb.rows] == [1, 2, 3, 1]
    main, alone = rows["ftx"]["group"], rows["other"]["group"]
    assert main != alone and {rows["imgnet"]["group"], rows["rand"]["group"]} == {main}
    assert "plan.plan_id" in alone and runs["other"].evaluation_id[:8] in alone
    assert len({r["evaluation_id"] for r in lb.rows if r["group"] == main}) == 1
    n_train, n_test = plan.mean_train_test_sizes()
    ps = [
        corrected_resampled_ttest(
            runs["ftx"].fold_scores, runs[e].fold_scores, n_train, n_test
        ).p_value
        for e in ("imgnet", "rand")
    ]
    assert [rows["imgnet"]["p_vs_best"], rows["rand"]["p_vs_best"]] == pytest.approx(ps)
    holm = multipletests(ps, method="holm")[1]
    assert [rows["imgnet"]["p_holm_vs_best"], rows["rand"]["p_holm_vs_best"]] == pytest.approx(
        list(holm)
    )
    assert rows["other"]["p_vs_best"] is None and rows["other"]["best"] == "other"
    # Per gene: wins/losses against the best and the sign test.
    d = lb.details[main]
    assert d["target_kind"] == "gene" and len(d["targets"]) == 12
    vs = d["versus_best"]["imgnet"]
    wins = sum(ta[g].mean < tb[g].mean for g in ta)
    losses = sum(ta[g].mean > tb[g].mean for g in ta)
    assert (vs["n_improved"], vs["n_worse"]) == (wins, losses)
    assert vs["sign_test"]["p_value"] == pytest.approx(stats.binomtest(wins, wins + losses).pvalue)
    assert "other" not in d["extractors"] and "other" not in d["versus_best"]
    assert d["significance"]["ftx"]["n_targets"] == 12
    md = lb.markdown()
    assert "| gene | ftx | imgnet | rand |" in md
    assert f"imgnet vs ftx: better on {wins}, worse on {losses} of 12 genes" in md
    assert f"### {main} (pearson_r" in md and f"### {alone} (pearson_r" in md
    csv_df = pd.read_csv(io.StringIO(lb.csv()))
    assert list(csv_df["targets_worse"][:2].fillna(-1)) == [-1, losses]
    assert json.loads(lb.json())["details"][main]["best"] == "ftx"


def test_leaderboard_rows_keeps_the_old_call(demo_home, demo_records) -> None:
    """``leaderboard_rows(runs)`` (as `bench demo` calls it) opens the home store itself."""
    with ResultsStore(demo_home / "results.sqlite") as store:
        runs = store.latest_runs()
    rows = leaderboard_rows(runs)
    assert {r["extractor"] for r in rows} == set(demo_records)
    assert all(r["ci95_low"] is not None for r in rows)


def test_a_table_never_mixes_evaluations(hb_home: Path) -> None:
    """luad-mutation runs with lambda.min and one with lambda.1se: two labelled tables, and no
    p-value between runs of different evaluations (mixing them would be too loose)."""
    plan = patient_plan(4, 3)
    with open_store(hb_home) as store:
        mutation_run(store, "m1", "ftx", plan, 1.0, "2026-01-01T00:00:01", seed=1)
        mutation_run(store, "m2", "imgnet", plan, 0.6, "2026-01-01T00:00:02", seed=2)
        mutation_run(store, "m3", "rand", plan, 0.2, "2026-01-01T00:00:03", seed=3,
                     options={"lambda_rule": "1se"})  # fmt: skip
        lb = build_leaderboard(store, "luad-mutation")
    rows = {r["extractor"]: r for r in lb.rows}
    assert rows["ftx"]["group"] == rows["imgnet"]["group"] != rows["rand"]["group"]
    assert "options.lambda_rule" in rows["rand"]["group"] and "'1se'" in rows["rand"]["group"]
    assert rows["rand"]["rank"] == 1 and rows["rand"]["p_vs_best"] is None
    assert rows["imgnet"]["p_vs_best"] is not None
    assert set(lb.details) == {rows["ftx"]["group"], rows["rand"]["group"]}
    assert lb.details[rows["ftx"]["group"]]["extractors"] == ["ftx", "imgnet"]


def test_bounded_run_ci_is_clipped_to_the_metric_range(hb_home: Path) -> None:
    """An AUC run near 1 whose corrected interval would pass 1: the leaderboard's CI ends at 1."""
    from tests.leaderboard.helpers import stored_fold_runs

    fold_a = np.full((3, 3), 0.99)
    fold_a[0, 0] = 0.7
    with open_store(hb_home) as store:
        stored_fold_runs(store, fold_a, np.full((3, 3), 0.6))
        run = store.get_run("a")
        n_train, n_test = store.load_plan(run.plan_id).mean_train_test_sizes()
        rows = {r["extractor"]: r for r in build_leaderboard(store, "luad-mutation").rows}
    folds = fold_a.ravel()
    half = stats.t.ppf(0.975, 8) * math.sqrt((1 / 9 + n_test / n_train) * folds.var(ddof=1))
    assert run.mean + half > 1.0  # unclipped, the interval would leave [0, 1]
    assert rows["ftx"]["ci95_high"] == 1.0
    assert rows["ftx"]["ci95_low"] == pytest.approx(run.mean - half)


def test_significant_gene_counts_use_benjamini_hochberg(hb_home: Path) -> None:
    """20 genes × 5 repeats of stored p-values, 4 genes strong, 6 borderline (p ≈ 0.03): the
    count is Benjamini–Hochberg within each repeat then the run's majority rule; the
    uncorrected count (p < 0.05) is reported beside it and labelled."""
    from histobench.leaderboard.per_target import significance_counts
    from histobench.plugins.specs import TargetResult

    rng = np.random.default_rng(0)
    p = rng.uniform(0.2, 1.0, size=(20, 5))
    p[:4] = 1e-4
    p[4:10] = 0.03
    targets = {
        f"G{g}": TargetResult("auc", np.full(5, 0.6), None, {"p_values": list(p[g])})
        for g in range(20)
    }
    plan = patient_plan(5, 3)
    with open_store(hb_home) as store:
        mutation_run(store, "m1", "ftx", plan, 1.0, "2026-01-01T00:00:01")
        run = store.get_run("m1")
    counts = significance_counts(run, targets)
    q = np.column_stack([multipletests(p[:, r], method="fdr_bh")[1] for r in range(5)])
    expected = int(((q <= 0.05).mean(axis=1) > 0.5).sum())
    assert counts["n_significant"] == expected == 4
    assert counts["n_significant_uncorrected"] == 10
    assert counts["fraction_significant"] == pytest.approx(4 / 20)
    assert "Benjamini-Hochberg" in counts["method"] and "without" in counts["uncorrected_method"]
