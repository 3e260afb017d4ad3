"""Same config and seed on CPU: bitwise-identical scores; `bench rerun` says what differs."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import pytest

from tests.conftest import assert_one_line_error, small_run_config, write_textured_tiles


def _db() -> Path:
    return Path(os.environ["HISTOBENCH_HOME"]) / "results.sqlite"


@pytest.fixture
def run_config(tmp_path: Path) -> Path:
    root = write_textured_tiles(tmp_path / "tiles", {"A": 8, "B": 8, "C": 8}, size=32)
    return small_run_config(tmp_path / "run.toml", root)


@pytest.mark.slow
def test_two_runs_in_fresh_homes_give_bitwise_identical_scores(
    cli, run_config: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    records = []
    for name in ("home1", "home2"):  # fresh homes: features are extracted twice, not cached
        monkeypatch.setenv("HISTOBENCH_HOME", str(tmp_path / name))
        code, out, err = cli("run", "--config", run_config, "--json", "--device", "cpu")
        assert code == 0, err
        records.append(json.loads(out))
    first, second = records
    assert first["details"]["extraction"]["computed"] == 24
    assert second["details"]["extraction"]["computed"] == 24
    assert first["fold_scores"] == second["fold_scores"]  # exact float equality
    assert first["scores"] == second["scores"]
    assert first["per_target"] == second["per_target"]
    assert first["plan_id"] == second["plan_id"]


@pytest.mark.slow
def test_rerun_identical_then_names_what_differs_and_why(cli, run_config: Path) -> None:
    code, out, err = cli("run", "--config", run_config, "--json", "--device", "cpu")
    assert code == 0, err
    run_id = json.loads(out)["run_id"]

    code, out, err = cli("rerun", run_id)
    assert code == 0, err
    assert "identical" in out

    # A stored run made elsewhere: another torch, and one repeat's score moved by it.
    with sqlite3.connect(_db()) as db:
        db.execute(
            "UPDATE runs SET env = json_set(env, '$.packages.torch', '0.0.1') WHERE run_id = ?",
            (run_id,),
        )
        db.execute(
            "UPDATE repeat_scores SET score = score + 0.01 WHERE run_id = ? AND repeat = 0",
            (run_id,),
        )
    code, out, err = cli("rerun", run_id, "--json")
    assert code == 3, err
    report = json.loads(out)
    assert not report["identical"] and report["rerun_id"] != run_id
    fields = {d["field"]: d for d in report["differences"]}
    assert set(fields) == {"scores.repeat_scores", "env.packages.torch"}
    assert fields["env.packages.torch"]["old"] == "0.0.1"
    assert "other versions (torch)" in fields["scores.repeat_scores"]["why"]


def test_rerun_of_an_unknown_run_is_one_line(cli) -> None:
    code, _, err = cli("rerun", "20200101-000000-abcdef")
    assert code == 1
    assert_one_line_error(err, "20200101-000000-abcdef", "not in")
