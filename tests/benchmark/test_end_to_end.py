"""End to end: real NCT-CRC-HE tiles, paired plans across extractors, the demo."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import assert_one_line_error, small_run_config


def _dihedral_copies(src: Path, dst: Path) -> Path:
    """The 9 real tiles (one per class) → 8 flips/rotations each, in the NCT layout.

    Only to exercise the full pipeline on real H&E pixels; the copies share a source tile, so
    the accuracy says nothing about generalisation.
    """
    for tile in sorted(src.glob("*/*.tif")):
        cls = tile.parent.name
        (dst / cls).mkdir(parents=True, exist_ok=True)
        img = Image.open(tile).convert("RGB")
        for k in range(8):
            out = img.rotate(90 * (k % 4))
            if k >= 4:
                out = out.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            out.save(dst / cls / f"{cls}-{tile.stem.split('-')[1]}{k}.tif")
    return dst


@pytest.mark.slow
def test_real_tiles_end_to_end_and_paired_plans(cli, shared_data: Path, tmp_path: Path) -> None:
    real = shared_data / "crc-sample"
    # Every real tile, in the folder as Zenodo lays it out, is read and embedded.
    code, out, err = cli("extract", "--extractor", "effnet-lite0", "--dataset", real, "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["embedded"] == 9 and summary["computed"] == 9 and summary["skipped"] == []
    code, out, _ = cli("extract", "--extractor", "effnet-lite0", "--dataset", real, "--json")
    assert json.loads(out)["cached"] == 9  # the second pass reads the cache
    # One tile per class is too few for cross-validation: a clear error, not a crash.
    code, _, err = cli(
        "run",
        "--extractor",
        "effnet-lite0",
        "--task",
        "crc-tissue",
        "--dataset",
        real,
        "--folds",
        "2",
        "--repeats",
        "1",
    )
    assert code == 1
    assert_one_line_error(err, "has 1 items, fewer than the 2 folds")

    data = _dihedral_copies(real, tmp_path / "crc")
    records = {}
    for extractor in ("effnet-lite0", "random-init"):
        cfg = small_run_config(tmp_path / f"{extractor}.toml", data, extractor=extractor)
        code, out, err = cli("run", "--config", cfg, "--json", "--repeats", "3", "--folds", "4")
        assert code == 0, err
        records[extractor] = json.loads(out)
    eff = records["effnet-lite0"]
    for key in (
        "run_id",
        "extractor",
        "task",
        "metric",
        "mean",
        "std",
        "repeats",
        "folds",
        "scores",
        "fold_scores",
        "per_target",
        "config",
        "env",
    ):
        assert key in eff
    assert (eff["repeats"], eff["folds"], len(eff["scores"])) == (3, 4, 3)
    assert np.array(eff["fold_scores"]).shape == (3, 4)
    assert set(eff["per_target"]) == {
        "ADI",
        "BACK",
        "DEB",
        "LYM",
        "MUC",
        "MUS",
        "NORM",
        "STR",
        "TUM",
    }
    assert eff["mean"] > 0.8  # rotated copies of real tiles are easy for ImageNet features
    assert eff["env"]["device"] == "cpu" and eff["env"]["packages"]["torch"]
    assert eff["config"]["cv"] == {"repeats": 3, "folds": 4, "group_by": "patient", "plan": None}
    # Paired: both extractors were scored on the same stored plan, fold by fold.
    assert eff["plan_id"] == records["random-init"]["plan_id"]
    db = sqlite3.connect(Path(__import__("os").environ["HISTOBENCH_HOME"]) / "results.sqlite")
    assert db.execute("SELECT COUNT(*) FROM split_plans").fetchone()[0] == 1
    assert db.execute("SELECT COUNT(DISTINCT plan_id) FROM runs").fetchone()[0] == 1


@pytest.mark.slow
def test_demo_prints_a_leaderboard_and_writes_the_report(cli) -> None:
    code, out, err = cli(
        "demo", "--tiles-per-class", "6", "--repeats", "2", "--folds", "3", "--no-luad"
    )
    assert code == 0, err
    ranks = {
        line.split("|")[2].strip(): int(line.split("|")[1])
        for line in out.splitlines()
        if line.startswith("| ") and line.split("|")[1].strip().isdigit()
    }
    assert set(ranks) == {"effnet-lite0", "ftx", "random-init"}
    # ImageNet features, fine-tuned or not, beat random weights on texture.
    assert ranks["random-init"] == 3
    report = Path(out.strip().splitlines()[-1].removeprefix("HTML report: "))
    assert report.is_file() and "<table" in report.read_text()
    code, out, _ = cli("leaderboard", "--format", "json")
    rows = json.loads(out)["rows"]
    assert {r["extractor"] for r in rows} == {"effnet-lite0", "ftx", "random-init"}
    assert all(r["plan_id"] == rows[0]["plan_id"] for r in rows)
    code, out, _ = cli("leaderboard", "--format", "csv")
    assert out.splitlines()[0].startswith("task,extractor,metric,")
