"""Several ``bench run`` processes on one HISTOBENCH_HOME at once: no lost or duplicated rows,
no half-written cache entry read, no feature computed twice while another process computes it."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import small_run_config, write_textured_tiles

from .procs import BENCH, run, start

N_TILES = 48


def _command(cfg: Path) -> list[str]:
    return [*BENCH, "run", "--config", str(cfg), "--json", "--batch-size", "2", "--device", "cpu"]


@pytest.mark.slow
def test_concurrent_runs_share_one_home(tmp_path: Path) -> None:
    tiles = write_textured_tiles(tmp_path / "tiles", {"A": 16, "B": 16, "C": 16}, size=32)
    same = small_run_config(tmp_path / "same.toml", tiles)
    other = tmp_path / "other.toml"  # another extractor identity (input size) on the same tiles
    other.write_text(same.read_text().replace("input_size = 64", "input_size = 48"))
    home = tmp_path / "home"
    configs = [same, same, same, other]
    procs = [start(_command(cfg), home) for cfg in configs]
    outputs = [p.communicate(timeout=900) for p in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
    records = [json.loads(out) for out, _ in outputs]

    # Every run landed once.
    with sqlite3.connect(home / "results.sqlite") as db:
        stored = sorted(r[0] for r in db.execute("SELECT run_id FROM runs"))
        plans = db.execute("SELECT COUNT(DISTINCT plan_id), COUNT(*) FROM split_plans").fetchone()
        fold_rows = db.execute("SELECT COUNT(*) FROM fold_scores").fetchone()[0]
    assert stored == sorted(r["run_id"] for r in records) and len(set(stored)) == 4
    assert plans == (1, 1)  # one plan for the data set and seed, saved once
    assert fold_rows == 4 * 2 * 3
    # The three runs of one extractor computed each feature exactly once between them.
    extraction = [r["details"]["extraction"] for r in records[:3]]
    assert sum(e["computed"] for e in extraction) == N_TILES, extraction
    assert all(e["computed"] + e["cached"] == N_TILES for e in extraction)
    assert all(e["corrupt_cache_files_recomputed"] == 0 for r in records
               for e in [r["details"]["extraction"]])  # fmt: skip
    assert records[0]["fold_scores"] == records[1]["fold_scores"] == records[2]["fold_scores"]
    # And equal to the same run alone in its own home.
    alone = run(_command(same), tmp_path / "alone")
    assert alone.returncode == 0, alone.stderr
    assert json.loads(alone.stdout)["fold_scores"] == records[0]["fold_scores"]
    assert records[3]["details"]["extraction"]["computed"] == N_TILES


_HOLDER = """
import sys
from pathlib import Path
from histobench.benchmark.cache import EntryLocks
locks = EntryLocks(Path(sys.argv[1]))
assert locks.claim("entry-a")
print("held", flush=True)
sys.stdin.readline()  # hold until killed
"""


def test_an_entry_claimed_by_a_live_process_is_busy_and_freed_when_it_is_killed(
    tmp_path: Path,
) -> None:
    import os
    import signal
    import subprocess
    import sys

    from histobench.benchmark.cache import EntryLocks

    lock_file = tmp_path / ".locks"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(lock_file)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        locks = EntryLocks(lock_file)
        assert not locks.claim("entry-a")  # another process is computing it
        assert locks.claim("entry-b")  # other entries are free
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(timeout=30)
        locks.wait("entry-a")  # returns: the kernel dropped the dead process's lock
        assert locks.claim("entry-a")
    finally:
        if holder.poll() is None:
            holder.kill()
        holder.wait(timeout=30)


def test_a_store_migrated_by_another_process_meanwhile_is_not_migrated_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Process A reads schema v0, process B creates the tables, then A migrates: A must see
    B's work under the write lock instead of failing with 'table split_plans already exists'
    (what four concurrent `bench run` on a new home hit)."""
    from histobench.benchmark.store import SCHEMA_VERSION, ResultsStore

    db = tmp_path / "results.sqlite"
    ResultsStore(db).close()  # B, done
    reads = iter([0])  # A's first look happened before B finished

    def stale_then_real(self: ResultsStore) -> int:
        real = int(self.conn.execute("PRAGMA user_version").fetchone()[0])
        return next(reads, real)

    monkeypatch.setattr(ResultsStore, "schema_version", property(stale_then_real))
    with ResultsStore(db) as store:
        assert store.schema_version == SCHEMA_VERSION
