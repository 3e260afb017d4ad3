"""The results store: SQLite (stdlib, WAL mode) at ``HISTOBENCH_HOME/results.sqlite``.

It keeps runs (full config and environment), split plans, per-fold, per-repeat and per-target
scores, and per-unit out-of-fold predictions, so paired tests (including DeLong) can be computed
later without refitting. A run is written in one transaction: a crash never leaves half a run.
Arrays are stored as ``.npy`` bytes and read back with ``allow_pickle=False``.
"""

from __future__ import annotations

import io
import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from histobench.plugins.errors import HistobenchError
from histobench.plugins.specs import (
    Predictions,
    SkippedItem,
    SplitPlan,
    TargetResult,
    TaskResult,
    digest,
)

# Each entry upgrades the schema by one version; never edit a released entry, append a new one.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE split_plans (
        plan_id TEXT PRIMARY KEY,
        task TEXT NOT NULL,
        dataset_fingerprint TEXT NOT NULL,
        repeats INTEGER NOT NULL,
        folds INTEGER NOT NULL,
        seed INTEGER NOT NULL,
        algorithm TEXT NOT NULL,
        unit_ids TEXT NOT NULL,
        assignments BLOB NOT NULL,
        created TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
    );
    CREATE TABLE runs (
        run_id TEXT PRIMARY KEY,
        created TEXT NOT NULL,
        extractor TEXT NOT NULL,
        task TEXT NOT NULL,
        dataset TEXT NOT NULL,
        dataset_fingerprint TEXT NOT NULL,
        plan_id TEXT NOT NULL REFERENCES split_plans(plan_id),
        metric TEXT NOT NULL,
        greater_is_better INTEGER NOT NULL,
        mean REAL,
        std REAL,
        repeats INTEGER NOT NULL,
        folds INTEGER NOT NULL,
        config TEXT NOT NULL,
        env TEXT NOT NULL,
        details TEXT NOT NULL,
        code_version TEXT NOT NULL
    );
    CREATE INDEX runs_by_task ON runs(task, extractor, created);
    CREATE TABLE fold_scores (
        run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
        repeat INTEGER NOT NULL, fold INTEGER NOT NULL, score REAL,
        PRIMARY KEY (run_id, repeat, fold)
    );
    CREATE TABLE repeat_scores (
        run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
        repeat INTEGER NOT NULL, score REAL,
        PRIMARY KEY (run_id, repeat)
    );
    CREATE TABLE target_scores (
        run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
        target TEXT NOT NULL, metric TEXT NOT NULL, mean REAL,
        repeat_scores BLOB NOT NULL, fold_scores BLOB, extra TEXT NOT NULL,
        PRIMARY KEY (run_id, target)
    );
    CREATE TABLE predictions (
        run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
        target TEXT NOT NULL, y_true BLOB NOT NULL, y_pred BLOB NOT NULL, y_score BLOB,
        PRIMARY KEY (run_id, target)
    );
    CREATE TABLE skipped_items (
        run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
        item_id TEXT NOT NULL, reason TEXT NOT NULL
    );
    """,
    # v2 (evaluation identity): what, apart from the extractor, decides a run's scores; runs
    # are compared only when their evaluation_id is equal. NULL for runs stored before.
    """
    ALTER TABLE runs ADD COLUMN evaluation_id TEXT;
    ALTER TABLE runs ADD COLUMN evaluation TEXT;
    CREATE INDEX runs_by_evaluation ON runs(task, evaluation_id);
    """,
    # v3 (split plans in and out): a plan keeps each unit's patient and site (for export and
    # checks) and what grouped it; its id is its folds, so the inputs that drew it (the recipe)
    # find it again through their own table. NULL for plans stored before.
    """
    ALTER TABLE split_plans ADD COLUMN patients TEXT;
    ALTER TABLE split_plans ADD COLUMN sites TEXT;
    ALTER TABLE split_plans ADD COLUMN grouped_by TEXT;
    CREATE TABLE plan_recipes (
        recipe TEXT PRIMARY KEY,
        plan_id TEXT NOT NULL REFERENCES split_plans(plan_id)
    );
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


def to_blob(array: np.ndarray | None) -> bytes | None:
    if array is None:
        return None
    buf = io.BytesIO()
    np.save(buf, np.asarray(array), allow_pickle=False)
    return buf.getvalue()


def from_blob(blob: bytes | None) -> np.ndarray | None:
    if blob is None:
        return None
    return np.load(io.BytesIO(blob), allow_pickle=False)


@dataclass
class RunRecord:
    """A stored run, as read back."""

    run_id: str
    created: str
    extractor: str
    task: str
    dataset: str
    dataset_fingerprint: str
    plan_id: str
    metric: str
    greater_is_better: bool
    mean: float
    std: float
    repeats: int
    folds: int
    config: dict[str, Any]
    env: dict[str, Any]
    details: dict[str, Any]
    code_version: str
    fold_scores: np.ndarray
    repeat_scores: np.ndarray
    # The evaluation identity (benchmark/identity.py); None for runs stored before v2.
    evaluation_id: str | None = None
    evaluation: dict[str, Any] | None = None


class ResultsStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.conn = sqlite3.connect(path, timeout=30)
            self.conn.row_factory = sqlite3.Row  # rows by column name (and still by index)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA foreign_keys=ON")
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise HistobenchError(f"{path}: not a usable histobench results store ({exc})") from exc

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schema -------------------------------------------------------------------------------

    @property
    def schema_version(self) -> int:
        return int(self.conn.execute("PRAGMA user_version").fetchone()[0])

    def _migrate(self) -> None:
        current = self.schema_version
        if current > SCHEMA_VERSION:
            raise HistobenchError(
                f"{self.path}: results store has schema v{current}, newer than this histobench "
                f"(v{SCHEMA_VERSION}); upgrade histobench"
            )
        for version in range(current, SCHEMA_VERSION):
            self._apply_migration(version)

    def _apply_migration(self, version: int) -> None:
        """One schema step, exactly once even when several processes open a new store at once:
        the write lock is taken first (BEGIN IMMEDIATE waits for it), then the version is read
        again, and the step's statements run inside that same transaction."""
        cur = self.conn.cursor()
        try:
            cur.execute("BEGIN IMMEDIATE")
            if self.schema_version > version:  # another process applied it meanwhile
                self.conn.rollback()
                return
            for statement in _statements(MIGRATIONS[version]):
                cur.execute(statement)
            cur.execute(f"PRAGMA user_version={version + 1}")
            self.conn.commit()
        except BaseException:
            self.conn.rollback()
            raise
        finally:
            cur.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Cursor]:
        cur = self.conn.cursor()
        try:
            yield cur
            self.conn.commit()
        except BaseException:
            self.conn.rollback()
            raise
        finally:
            cur.close()

    # -- split plans --------------------------------------------------------------------------

    def save_plan(self, plan: SplitPlan, task: str, dataset_fingerprint: str) -> None:
        """Store a plan once (its id is its folds) and remember the recipe that drew it."""
        with self._transaction() as cur:
            cur.execute(
                "INSERT OR IGNORE INTO split_plans (plan_id, task, dataset_fingerprint, repeats,"
                " folds, seed, algorithm, unit_ids, assignments, patients, sites, grouped_by)"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    plan.plan_id,
                    task,
                    dataset_fingerprint,
                    plan.repeats,
                    plan.folds,
                    plan.seed,
                    plan.algorithm,
                    json.dumps(list(plan.unit_ids)),
                    to_blob(plan.assignments),
                    None if plan.patients is None else json.dumps(list(plan.patients)),
                    None if plan.sites is None else json.dumps(list(plan.sites)),
                    plan.grouped_by,
                ),
            )
            if plan.recipe is not None:
                cur.execute(
                    "INSERT OR IGNORE INTO plan_recipes (recipe, plan_id) VALUES (?, ?)",
                    (plan.recipe, plan.plan_id),
                )

    def load_plan(self, plan_id: str) -> SplitPlan | None:
        row = self.conn.execute(
            "SELECT unit_ids, assignments, repeats, folds, seed, algorithm, patients, sites,"
            " grouped_by FROM split_plans WHERE plan_id = ?",
            (plan_id,),
        ).fetchone()
        if row is None:
            return None
        assignments = from_blob(row[1])
        assert assignments is not None
        patients, sites = (None if v is None else tuple(json.loads(v)) for v in (row[6], row[7]))
        return SplitPlan(
            plan_id,
            tuple(json.loads(row[0])),
            assignments,
            row[2],
            row[3],
            row[4],
            row[5],
            patients=patients,
            sites=sites,
            grouped_by=row[8] or "patient",
        )

    def plan_for_recipe(self, recipe: str) -> SplitPlan | None:
        """The plan drawn before from the same inputs, seed and algorithm version."""
        row = self.conn.execute(
            "SELECT plan_id FROM plan_recipes WHERE recipe = ?", (recipe,)
        ).fetchone()
        return None if row is None else self.load_plan(row[0])

    def plan_of_run(self, run_id: str) -> str | None:
        row = self.conn.execute("SELECT plan_id FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None else str(row[0])

    # -- runs ---------------------------------------------------------------------------------

    def save_run(
        self,
        *,
        run_id: str,
        created: str,
        extractor: str,
        task: str,
        dataset: str,
        dataset_fingerprint: str,
        plan: SplitPlan,
        greater_is_better: bool,
        result: TaskResult,
        config: dict[str, Any],
        env: dict[str, Any],
        code_version: str,
        skipped: list[SkippedItem],
        evaluation: dict[str, Any] | None = None,
    ) -> None:
        """Store one run in one transaction; ``evaluation`` is its evaluation identity record
        (its digest becomes ``evaluation_id``)."""
        scores = result.repeat_scores
        evaluation_id = digest(evaluation, length=16) if evaluation is not None else None
        with self._transaction() as cur:
            cur.execute(
                f"INSERT INTO runs ({', '.join(_RUN_COLUMNS)}) VALUES"
                f" ({', '.join('?' * len(_RUN_COLUMNS))})",
                (
                    run_id,
                    created,
                    extractor,
                    task,
                    dataset,
                    dataset_fingerprint,
                    plan.plan_id,
                    result.metric,
                    int(greater_is_better),
                    float(np.nanmean(scores)),
                    float(np.nanstd(scores, ddof=1)) if len(scores) > 1 else 0.0,
                    plan.repeats,
                    plan.folds,
                    json.dumps(config, default=str),
                    json.dumps(env, default=str),
                    json.dumps(result.details, default=str),
                    code_version,
                    evaluation_id,
                    None if evaluation is None else json.dumps(evaluation, default=str),
                ),
            )
            cur.executemany(
                "INSERT INTO fold_scores VALUES (?,?,?,?)",
                [
                    (run_id, r, k, _num(result.fold_scores[r, k]))
                    for r in range(result.fold_scores.shape[0])
                    for k in range(result.fold_scores.shape[1])
                ],
            )
            cur.executemany(
                "INSERT INTO repeat_scores VALUES (?,?,?)",
                [(run_id, r, _num(s)) for r, s in enumerate(scores)],
            )
            cur.executemany(
                "INSERT INTO target_scores VALUES (?,?,?,?,?,?,?)",
                [
                    (
                        run_id,
                        name,
                        t.metric,
                        _num(t.mean),
                        to_blob(t.repeat_scores),
                        to_blob(t.fold_scores),
                        json.dumps(t.extra, default=str),
                    )
                    for name, t in result.per_target.items()
                ],
            )
            cur.executemany(
                "INSERT INTO predictions VALUES (?,?,?,?,?)",
                [
                    (run_id, p.target, to_blob(p.y_true), to_blob(p.y_pred), to_blob(p.y_score))
                    for p in result.predictions
                ],
            )
            cur.executemany(
                "INSERT INTO skipped_items VALUES (?,?,?)",
                [(run_id, s.item_id, s.reason) for s in skipped],
            )

    def _record(self, row: sqlite3.Row) -> RunRecord:
        run_id = row["run_id"]
        folds = self.conn.execute(
            "SELECT repeat, fold, score FROM fold_scores WHERE run_id = ?", (run_id,)
        ).fetchall()
        fold_scores = np.full((row["repeats"], row["folds"]), np.nan)
        for r, k, s in folds:
            fold_scores[r, k] = np.nan if s is None else s
        reps = self.conn.execute(
            "SELECT score FROM repeat_scores WHERE run_id = ? ORDER BY repeat", (run_id,)
        ).fetchall()
        evaluation = row["evaluation"]
        return RunRecord(
            run_id=run_id,
            created=row["created"],
            extractor=row["extractor"],
            task=row["task"],
            dataset=row["dataset"],
            dataset_fingerprint=row["dataset_fingerprint"],
            plan_id=row["plan_id"],
            metric=row["metric"],
            greater_is_better=bool(row["greater_is_better"]),
            mean=row["mean"],
            std=row["std"],
            repeats=row["repeats"],
            folds=row["folds"],
            config=json.loads(row["config"]),
            env=json.loads(row["env"]),
            details=json.loads(row["details"]),
            code_version=row["code_version"],
            fold_scores=fold_scores,
            repeat_scores=np.array([np.nan if s[0] is None else s[0] for s in reps]),
            evaluation_id=row["evaluation_id"],
            evaluation=None if evaluation is None else json.loads(evaluation),
        )

    def get_run(self, run_id: str) -> RunRecord | None:
        row = self.conn.execute("SELECT * FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None else self._record(row)

    def runs(self, task: str | None = None, extractor: str | None = None) -> list[RunRecord]:
        """All runs, oldest first, optionally filtered."""
        sql, args = "SELECT * FROM runs WHERE 1=1", []
        if task:
            sql += " AND task = ?"
            args.append(task)
        if extractor:
            sql += " AND extractor = ?"
            args.append(extractor)
        rows = self.conn.execute(sql + " ORDER BY created, rowid", args).fetchall()
        return [self._record(r) for r in rows]

    def latest_runs(self, task: str | None = None) -> list[RunRecord]:
        """The newest run of each (task, extractor) pair."""
        latest: dict[tuple[str, str], RunRecord] = {}
        for run in self.runs(task):
            latest[(run.task, run.extractor)] = run
        return list(latest.values())

    def target_results(self, run_id: str) -> dict[str, TargetResult]:
        rows = self.conn.execute(
            "SELECT target, metric, repeat_scores, fold_scores, extra FROM target_scores"
            " WHERE run_id = ? ORDER BY rowid",
            (run_id,),
        ).fetchall()
        out = {}
        for target, metric, reps, folds, extra in rows:
            rep = from_blob(reps)
            assert rep is not None
            out[target] = TargetResult(metric, rep, from_blob(folds), json.loads(extra))
        return out

    def predictions(self, run_id: str) -> dict[str, Predictions]:
        rows = self.conn.execute(
            "SELECT target, y_true, y_pred, y_score FROM predictions WHERE run_id = ?"
            " ORDER BY rowid",
            (run_id,),
        ).fetchall()
        out = {}
        for target, y_true, y_pred, y_score in rows:
            yt, yp = from_blob(y_true), from_blob(y_pred)
            assert yt is not None and yp is not None
            out[target] = Predictions(target, yt, yp, from_blob(y_score))
        return out

    def skipped_items(self, run_id: str) -> list[SkippedItem]:
        rows = self.conn.execute(
            "SELECT item_id, reason FROM skipped_items WHERE run_id = ? ORDER BY rowid", (run_id,)
        ).fetchall()
        return [SkippedItem(i, r) for i, r in rows]


# The runs columns save_run writes, by name (later migrations may add columns of their own).
_RUN_COLUMNS = (
    "run_id",
    "created",
    "extractor",
    "task",
    "dataset",
    "dataset_fingerprint",
    "plan_id",
    "metric",
    "greater_is_better",
    "mean",
    "std",
    "repeats",
    "folds",
    "config",
    "env",
    "details",
    "code_version",
    "evaluation_id",
    "evaluation",
)


def _statements(script: str) -> list[str]:
    """A migration script's statements, split where SQLite says a statement is complete."""
    statements, pending = [], ""
    for line in script.splitlines(keepends=True):
        pending += line
        if sqlite3.complete_statement(pending):
            statements.append(pending.strip())
            pending = ""
    if pending.strip():
        statements.append(pending.strip())
    return [s for s in statements if s.rstrip(";").strip()]


def _num(value: Any) -> float | None:
    value = float(value)
    return None if np.isnan(value) else value
