"""The leaderboard's site-signature row: patient- vs site-grouped runs of one extractor."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from histobench.benchmark.splits import make_plan
from histobench.benchmark.store import ResultsStore
from histobench.leaderboard.site_drop import site_drop
from histobench.leaderboard.tables import build_leaderboard
from histobench.plugins.specs import TaskResult


def _save(store, run_id, extractor, group_by, mean, created, evaluation=None, fp="fp"):  # type: ignore[no-untyped-def]
    ids = [f"TCGA-S{i % 4}-{i:04d}" for i in range(20)]
    groups = ids if group_by == "patient" else [i.split("-")[1] for i in ids]
    plan = make_plan(ids, np.zeros(20, int), groups, 2, 2, seed=0, grouped_by=group_by)
    store.save_plan(plan, "toy", fp)
    scores = np.full((2, 2), mean)
    store.save_run(
        run_id=run_id, created=created, extractor=extractor, task="toy", dataset="d",
        dataset_fingerprint=fp, plan=plan, greater_is_better=True,
        result=TaskResult("auc", scores, scores.mean(axis=1)),
        config={"cv": {"group_by": group_by}, "task_options": {}},
        env={"precision": "float32"}, code_version="t", skipped=[],
        evaluation=None if evaluation is None else {**evaluation, "plan": plan.plan_id},
    )  # fmt: skip


def test_site_drop_only_when_both_kinds_exist(tmp_path: Path) -> None:
    with ResultsStore(tmp_path / "r.sqlite") as store:
        _save(store, "r1", "ext", "patient", 0.80, "2026-01-01")
        assert site_drop(store, "toy", "ext") is None
        assert "Site signature" not in build_leaderboard(store).markdown()
        _save(store, "r2", "ext", "site", 0.70, "2026-01-02")
        drop = site_drop(store, "toy", "ext")
        board = build_leaderboard(store)
        markdown, payload = board.markdown(), json.loads(board.json())
    assert drop is not None and abs(drop["drop"] - 0.10) < 1e-12
    assert drop["patient_run"] == "r1" and drop["site_run"] == "r2"
    assert (
        "Site signature" in markdown
        and "| toy | ext | auc | 0.8000 | 0.7000 | 0.1000 |" in markdown
    )
    assert payload["site_drops"][0]["drop"] == drop["drop"]


def test_unlike_runs_get_a_note_not_a_drop(tmp_path: Path) -> None:
    with ResultsStore(tmp_path / "r.sqlite") as store:
        _save(store, "r1", "ext", "patient", 0.8, "2026-01-01", {"options": {"C": 1}})
        _save(store, "r2", "ext", "site", 0.7, "2026-01-02", {"options": {"C": 2}})
        drop = site_drop(store, "toy", "ext")
    assert drop is not None and "drop" not in drop
    assert drop["note"].startswith("not comparable: options.C")
