"""Bad input: one-line errors or recorded skips, never tracebacks, nothing stored damaged."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import assert_one_line_error, small_run_config, write_textured_tiles


def _run(cli, cfg: Path, *extra: str):
    return cli("run", "--config", cfg, "--json", *extra)


def test_missing_and_empty_folders(cli, tmp_path: Path) -> None:
    code, _, err = cli(
        "run",
        "--extractor",
        "effnet-lite0",
        "--task",
        "crc-tissue",
        "--dataset",
        tmp_path / "absent",
    )
    assert code == 1
    assert_one_line_error(err, "absent", "not found")
    (tmp_path / "empty").mkdir()
    code, _, err = cli(
        "run",
        "--extractor",
        "effnet-lite0",
        "--task",
        "crc-tissue",
        "--dataset",
        tmp_path / "empty",
    )
    assert code == 1
    assert_one_line_error(err, "empty", "not a recognised data set")


def test_no_dataset_and_no_standard_data_mentions_demo(cli) -> None:
    code, _, err = cli("run", "--extractor", "effnet-lite0", "--task", "crc-tissue")
    assert code == 1
    assert_one_line_error(err, "crc-val-he-7k", "Zenodo", "--dataset demo")


@pytest.mark.slow
def test_bad_items_are_skipped_recorded_and_reported(cli, tmp_path: Path) -> None:
    root = write_textured_tiles(tmp_path / "tiles", {"A": 9, "B": 9, "C": 9})
    good = (root / "A" / "A-000.png").read_bytes()
    (root / "A" / "A-truncated.png").write_bytes(good[: len(good) // 2])
    (root / "B" / "notes.txt").write_text("not a tile")
    (root / "B" / "B-fake.tif").write_bytes(b"II*\x00garbage")
    Image.fromarray(np.full((64, 64), 128, np.uint8)).save(root / "C" / "C-grey.png")
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 255
    Image.fromarray(rgba).save(root / "C" / "C-rgba.png")
    cfg = small_run_config(tmp_path / "run.toml", root)
    # 4 bad of 32 items is over the default 5 % skip limit: allow it for this test.
    cfg.write_text("max_skipped_fraction = 0.2\n" + cfg.read_text())
    code, out, err = _run(cli, cfg)
    assert code == 0, err
    record = json.loads(out)
    reasons = {s["item_id"]: s["reason"] for s in record["skipped"]}
    assert set(reasons) == {"A/A-truncated.png", "B/notes.txt", "B/B-fake.tif", "C/C-grey.png"}
    assert "cannot decode" in reasons["A/A-truncated.png"]
    assert "not an image file" in reasons["B/notes.txt"]
    assert "greyscale" in reasons["C/C-grey.png"]
    assert record["n_units"] == 28  # 27 good tiles + the RGBA one (composited on white)
    # The skips are stored with the run too.
    db = sqlite3.connect(_db())
    assert (
        db.execute(
            "SELECT COUNT(*) FROM skipped_items WHERE run_id=?", (record["run_id"],)
        ).fetchone()[0]
        == 4
    )


def _db() -> Path:
    import os

    return Path(os.environ["HISTOBENCH_HOME"]) / "results.sqlite"


@pytest.mark.slow
def test_class_with_fewer_items_than_folds_and_store_untouched(cli, tmp_path: Path) -> None:
    ok = write_textured_tiles(tmp_path / "ok", {"A": 6, "B": 6})
    code, out, err = _run(cli, small_run_config(tmp_path / "ok.toml", ok))
    assert code == 0, err
    before = sqlite3.connect(_db()).execute("SELECT run_id, mean FROM runs").fetchall()
    small = write_textured_tiles(tmp_path / "small", {"A": 6, "B": 2})
    code, _, err = _run(cli, small_run_config(tmp_path / "small.toml", small))
    assert code == 1
    assert_one_line_error(err, "class 'B' has 2 items, fewer than the 3 folds")
    after = sqlite3.connect(_db()).execute("SELECT run_id, mean FROM runs").fetchall()
    assert after == before
