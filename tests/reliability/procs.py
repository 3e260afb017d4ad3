"""Running ``bench`` in subprocesses, and killing them at points seen from outside."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BENCH = [sys.executable, "-m", "histobench.cli.main"]


def bench_env(home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "src")]),
        "HISTOBENCH_HOME": str(home),
        "HISTOBENCH_QUIET": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
    }


def start(args: list[str], home: Path) -> subprocess.Popen:
    return subprocess.Popen(
        args, cwd=REPO, env=bench_env(home), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True,  # its own group: the kill takes any children too
    )  # fmt: skip


def run(args: list[str], home: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        args, cwd=REPO, env=bench_env(home), capture_output=True, text=True, timeout=600
    )


def kill_when(proc: subprocess.Popen, seen: Callable[[], bool], what: str) -> None:
    """SIGKILL ``proc`` (its whole group) as soon as ``seen()`` holds; fail if it ended first."""
    deadline = time.monotonic() + 300
    try:
        while not seen():
            if proc.poll() is not None:
                pytest.fail(f"ended before {what}: {proc.stderr.read() if proc.stderr else ''}")
            if time.monotonic() > deadline:
                pytest.fail(f"no {what} within 300 s")
            time.sleep(0.002)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, f"finished before the kill ({what})"


def kill_on_line(proc: subprocess.Popen, needle: str) -> None:
    """SIGKILL ``proc`` as soon as a line containing ``needle`` appears on its stderr."""
    assert proc.stderr is not None
    for line in proc.stderr:
        if needle in line:
            os.killpg(proc.pid, signal.SIGKILL)
            break
    else:
        proc.wait(timeout=60)
        pytest.fail(f"ended without printing {needle!r}")
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, f"finished before the kill ({needle})"
