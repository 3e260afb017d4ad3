"""``kill -9`` mid-command, then the same command: it completes, reuses what finished, and its
results equal an uninterrupted run's. Kills are triggered by observed progress (cache files
appearing, a log line, a store row count), never by sleeping.

Slide extraction and fine-tuning have their own kill tests beside their code:
tests/datasets/wsi/test_embed.py and tests/extractors/ftx/test_resume.py.
"""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

import pytest

from tests.conftest import small_run_config, write_textured_tiles

from .procs import BENCH, kill_on_line, kill_when, run, start

pytestmark = pytest.mark.slow


def _cache_files(home: Path) -> int:
    return sum(1 for _ in (home / "features").rglob("*.fv"))


def _runs(home: Path) -> list[str]:
    db = home / "results.sqlite"
    if not db.exists():
        return []
    try:
        with sqlite3.connect(db) as conn:
            return [r[0] for r in conn.execute("SELECT run_id FROM runs ORDER BY run_id")]
    except sqlite3.OperationalError:  # the store is being created: no table yet
        return []


@pytest.fixture(scope="module")
def tiles(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("crash")
    return write_textured_tiles(root / "tiles", {"A": 20, "B": 20, "C": 20}, size=32)


@pytest.fixture(scope="module")
def uninterrupted(tiles: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    home = tmp_path_factory.mktemp("baseline-home")
    cfg = small_run_config(home / "run.toml", tiles)
    done = run([*BENCH, "run", "--config", str(cfg), "--json", "--batch-size", "2"], home)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _command(tmp_path: Path, tiles: Path) -> list[str]:
    cfg = small_run_config(tmp_path / "run.toml", tiles)
    return [*BENCH, "run", "--config", str(cfg), "--json", "--batch-size", "2"]


def test_kill_during_feature_extraction(tmp_path: Path, tiles: Path, uninterrupted: dict) -> None:
    home, command = tmp_path / "home", _command(tmp_path, tiles)
    proc = start(command, home)
    kill_when(proc, lambda: _cache_files(home) >= 10, "10 cached feature files")
    finished = _cache_files(home)
    assert 10 <= finished < 60 and _runs(home) == []

    again = run(command, home)
    assert again.returncode == 0, again.stderr
    record = json.loads(again.stdout)
    extraction = record["details"]["extraction"]
    assert extraction["cached"] >= finished  # what finished is reused...
    assert extraction["computed"] + extraction["cached"] == 60  # ...the rest computed once
    assert extraction["corrupt_cache_files_recomputed"] == 0  # no half-written file was read
    assert record["fold_scores"] == uninterrupted["fold_scores"]
    assert record["per_target"] == uninterrupted["per_target"]


def test_kill_during_cross_validation(tmp_path: Path, tiles: Path, uninterrupted: dict) -> None:
    home, command = tmp_path / "home", _command(tmp_path, tiles)
    proc = start(command, home)
    kill_on_line(proc, "units, plan")  # printed once features are done, as the CV starts
    stored_before = _runs(home)
    assert len(stored_before) <= 1  # a run is written whole or not at all

    again = run(command, home)
    assert again.returncode == 0, again.stderr
    record = json.loads(again.stdout)
    assert record["details"]["extraction"]["computed"] == 0  # all features reused
    assert record["fold_scores"] == uninterrupted["fold_scores"]
    assert _runs(home) == sorted([*stored_before, record["run_id"]])


_WRITER = """
import sys
from pathlib import Path
import numpy as np
from histobench.benchmark.splits import make_plan
from histobench.benchmark.store import ResultsStore
from tests.leaderboard.helpers import expression_run

units = [f"u{i}" for i in range(30)]
plan = make_plan(units, np.arange(30) % 2, units, 4, 3, 0)
with ResultsStore(Path(sys.argv[1])) as store:
    for i in range(int(sys.argv[2])):
        expression_run(store, f"r{i:03d}", "x", plan, 0.3, f"2026-01-01T00:00:{i % 60:02d}",
                       n_genes=40, seed=i)
"""


def test_kill_during_results_store_writes(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    db = home / "results.sqlite"
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    proc = start([sys.executable, str(script), str(db), "400"], home)
    kill_when(proc, lambda: len(_runs(home)) >= 3, "3 stored runs")

    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = [r[0] for r in conn.execute("SELECT run_id FROM runs")]
        for table, per_run in (("target_scores", 40), ("repeat_scores", 4), ("fold_scores", 12)):
            counts = dict(conn.execute(f"SELECT run_id, COUNT(*) FROM {table} GROUP BY run_id"))
            assert {r: counts.get(r) for r in stored} == {r: per_run for r in stored}, table
    assert 3 <= len(stored) < 400
    # The same command again, from where it stopped (it re-creates the runs it lacks).
    redo = run([sys.executable, str(script), str(tmp_path / "again.sqlite"), "3"], home)
    assert redo.returncode == 0, redo.stderr
    from histobench.benchmark.store import ResultsStore

    with ResultsStore(db) as store, ResultsStore(tmp_path / "again.sqlite") as fresh:
        for run_id in ("r000", "r001", "r002"):
            a, b = store.get_run(run_id), fresh.get_run(run_id)
            assert a is not None and b is not None
            assert (a.fold_scores == b.fold_scores).all()
            assert store.target_results(run_id).keys() == fresh.target_results(run_id).keys()
