"""Kill a fine-tune mid-run, rerun the same command: the result is bitwise identical."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from histobench.extractors.ftx.train import EXIT_AFTER_EPOCH_ENV

from .helpers import read_weights

SRC = Path(__file__).resolve().parents[3] / "src"


def _finetune(data: Path, out: Path, home: Path, exit_after: int | None = None):
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
        "HISTOBENCH_HOME": str(home),
        "HISTOBENCH_QUIET": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }
    env.pop(EXIT_AFTER_EPOCH_ENV, None)
    if exit_after is not None:
        env[EXIT_AFTER_EPOCH_ENV] = str(exit_after)
    args = [
        "--data", str(data), "--out", str(out), "--backbone", "effnet-lite0",
        "--step1-epochs", "2", "--step2-epochs", "2", "--batch-size", "8",
        "--input-size", "64", "--val-fraction", "0.25", "--augment", "flips",
        "--device", "cpu", "--num-workers", "0",
    ]  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "histobench.extractors.ftx.cli", *args],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


@pytest.mark.slow  # four short subprocess runs
def test_killed_run_resumes_to_identical_weights(
    train_tiles: Path, tmp_path: Path, session_home: Path
) -> None:
    full = _finetune(train_tiles, tmp_path / "full", session_home)
    assert full.returncode == 0, full.stderr

    out = tmp_path / "killed"
    # Dies right after epoch 1 (mid step 1), then again after epoch 3 (mid step 2, where the
    # backbone's Adam state and the BN statistics must survive the restart).
    first = _finetune(train_tiles, out, session_home, exit_after=1)
    assert first.returncode == 75
    assert json.loads((out / "checkpoint.json").read_text())["epoch"] == 1
    assert not (out / "weights.safetensors").exists()
    second = _finetune(train_tiles, out, session_home, exit_after=3)
    assert second.returncode == 75
    assert json.loads((out / "checkpoint.json").read_text())["epoch"] == 3
    last = _finetune(train_tiles, out, session_home)
    assert last.returncode == 0, last.stderr
    assert "resumed after epoch 3" in last.stdout

    expected, got = read_weights(tmp_path / "full"), read_weights(out)
    assert set(expected) == set(got)
    for key, tensor in expected.items():
        assert torch.equal(tensor, got[key]), key
    card_full = json.loads((tmp_path / "full" / "model_card.json").read_text())
    card = json.loads((out / "model_card.json").read_text())
    assert card["weights_digest"] == card_full["weights_digest"]
    assert card["resumes"] == 2
    strip = ("seconds", "images_per_s")
    assert [{k: v for k, v in h.items() if k not in strip} for h in card["history"]] == [
        {k: v for k, v in h.items() if k not in strip} for h in card_full["history"]
    ]
