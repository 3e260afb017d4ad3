"""Kill a fine-tune mid-run (SIGKILL from outside, at points seen in its checkpoint), rerun
the same command: the result is bitwise identical to an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from .helpers import read_weights

SRC = Path(__file__).resolve().parents[3] / "src"
ARGS = [
    "--backbone", "effnet-lite0", "--step1-epochs", "2", "--step2-epochs", "2",
    "--batch-size", "8", "--input-size", "64", "--val-fraction", "0.25", "--augment", "flips",
    "--device", "cpu", "--num-workers", "0",
]  # fmt: skip


def _env(home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
        "HISTOBENCH_HOME": str(home),
        "HISTOBENCH_QUIET": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


def _command(data: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "histobench.cli.main", "finetune",
            "--data", str(data), "--out", str(out), *ARGS]  # fmt: skip


def _finetune(data: Path, out: Path, home: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        _command(data, out), env=_env(home), capture_output=True, text=True, timeout=300
    )


def _checkpoint_epoch(out: Path) -> int:
    try:
        return int(json.loads((out / "checkpoint.json").read_text())["epoch"])
    except (OSError, ValueError, KeyError):
        return 0  # not there yet (or being replaced: the rename is atomic, the read may race)


def kill_when_checkpointed(data: Path, out: Path, home: Path, epoch: int) -> int:
    """SIGKILL the fine-tune as soon as its checkpoint reaches ``epoch``; the epoch seen."""
    proc = subprocess.Popen(
        _command(data, out), env=_env(home), stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE, start_new_session=True,
    )  # fmt: skip
    deadline = time.monotonic() + 240
    try:
        while (seen := _checkpoint_epoch(out)) < epoch:
            if proc.poll() is not None:
                err = proc.stderr.read().decode() if proc.stderr else ""
                pytest.fail(f"fine-tune ended (rc {proc.returncode}) before epoch {epoch}: {err}")
            if time.monotonic() > deadline:
                pytest.fail(f"no checkpoint of epoch {epoch} within 240 s")
            time.sleep(0.005)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
        if proc.stderr:
            proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL, "the fine-tune finished before the kill"
    return seen


@pytest.mark.slow  # four short subprocess runs
def test_killed_run_resumes_to_identical_weights(
    train_tiles: Path, tmp_path: Path, session_home: Path
) -> None:
    full = _finetune(train_tiles, tmp_path / "full", session_home)
    assert full.returncode == 0, full.stderr

    out = tmp_path / "killed"
    # Killed once mid step 1, then again mid step 2 (where the backbone's Adam state and the
    # BN statistics must survive the restart); wherever in the epoch the kill lands.
    kill_when_checkpointed(train_tiles, out, session_home, epoch=1)
    assert 1 <= _checkpoint_epoch(out) < 4
    assert not (out / "weights.safetensors").exists()
    kill_when_checkpointed(train_tiles, out, session_home, epoch=3)
    resumed_from = _checkpoint_epoch(out)
    assert resumed_from == 3
    last = _finetune(train_tiles, out, session_home)
    assert last.returncode == 0, last.stderr
    assert f"resumed after epoch {resumed_from}" in last.stdout

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
