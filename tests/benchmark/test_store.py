"""SQLite results store: WAL, versioned schema, atomic runs, arrays without pickles."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from histobench.benchmark.splits import make_plan
from histobench.benchmark.store import SCHEMA_VERSION, ResultsStore
from histobench.plugins.errors import HistobenchError
from histobench.plugins.specs import Predictions, SkippedItem, TargetResult, TaskResult


def _result(R=3, K=2, N=8) -> TaskResult:
    rng = np.random.default_rng(0)
    return TaskResult(
        metric="accuracy",
        fold_scores=rng.uniform(size=(R, K)),
        repeat_scores=rng.uniform(size=R),
        per_target={
            "A": TargetResult("accuracy", rng.uniform(size=R), rng.uniform(size=(R, K)), {"n": 4})
        },
        predictions=[
            Predictions(
                "class",
                rng.integers(0, 2, N),
                rng.integers(0, 2, (R, N)),
                rng.normal(size=(R, N, 2)),
            )
        ],
        details={"estimator": "x"},
    )


def _save(store: ResultsStore, run_id: str, plan, result: TaskResult | None = None) -> None:
    store.save_run(
        run_id=run_id,
        created="2026-01-01T00:00:00+00:00",
        extractor="e",
        task="t",
        dataset="d",
        dataset_fingerprint="fp",
        plan=plan,
        greater_is_better=True,
        result=result or _result(),
        config={"a": 1},
        env={"device": "cpu"},
        code_version="0+x",
        skipped=[SkippedItem("bad.tif", "truncated")],
    )


def test_round_trip(tmp_path: Path) -> None:
    ids = [f"u{i}" for i in range(8)]
    plan = make_plan(ids, np.array([0, 1] * 4), ids, 3, 2, seed=0)
    result = _result()
    with ResultsStore(tmp_path / "r.sqlite") as store:
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.schema_version == SCHEMA_VERSION
        store.save_plan(plan, "t", "fp")
        store.save_plan(plan, "t", "fp")  # idempotent
        _save(store, "run1", plan, result)
    with ResultsStore(tmp_path / "r.sqlite") as store:
        loaded = store.load_plan(plan.plan_id)
        assert loaded is not None and np.array_equal(loaded.assignments, plan.assignments)
        run = store.get_run("run1")
        assert run is not None
        assert np.allclose(run.fold_scores, result.fold_scores)
        assert np.isclose(run.mean, result.repeat_scores.mean())
        targets = store.target_results("run1")
        assert np.allclose(targets["A"].fold_scores, result.per_target["A"].fold_scores)
        preds = store.predictions("run1")["class"]
        assert np.array_equal(preds.y_pred, result.predictions[0].y_pred)
        assert np.allclose(preds.y_score, result.predictions[0].y_score)
        assert store.skipped_items("run1") == [SkippedItem("bad.tif", "truncated")]


def test_failed_write_leaves_no_partial_run(tmp_path: Path) -> None:
    ids = [f"u{i}" for i in range(8)]
    plan = make_plan(ids, np.array([0, 1] * 4), ids, 3, 2, seed=0)
    with ResultsStore(tmp_path / "r.sqlite") as store:
        store.save_plan(plan, "t", "fp")
        _save(store, "run1", plan)
        with pytest.raises(sqlite3.IntegrityError):
            _save(store, "run1", plan)  # duplicate id fails midway through the transaction
        with pytest.raises(sqlite3.IntegrityError):
            _save(
                store, "run2", make_plan(ids, np.array([0, 1] * 4), ids, 3, 2, seed=5)
            )  # plan not stored
        assert [r.run_id for r in store.runs()] == ["run1"]
        assert store.conn.execute("SELECT COUNT(*) FROM fold_scores").fetchone()[0] == 6


def test_migrates_empty_and_refuses_newer_or_foreign_files(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    sqlite3.connect(path).close()
    with ResultsStore(path) as store:
        assert store.schema_version == SCHEMA_VERSION
        store.conn.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
        store.conn.commit()
    with pytest.raises(HistobenchError, match="newer than this histobench"):
        ResultsStore(path)
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(HistobenchError, match="not a usable histobench results store"):
        ResultsStore(junk)
    assert junk.read_bytes().startswith(b"this is not a database")  # left untouched
