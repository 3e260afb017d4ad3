"""Run R reference scripts on CSV data for parity tests (skipped where R is absent)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

HAS_R = shutil.which("Rscript") is not None
requires_r = pytest.mark.skipif(not HAS_R, reason="Rscript is not installed (R parity test)")


def r_has_package(name: str) -> bool:
    if not HAS_R:
        return False
    out = subprocess.run(
        ["Rscript", "-e", f"cat(requireNamespace('{name}', quietly=TRUE))"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    return out.stdout.strip().endswith("TRUE")


def write_csv(path: Path, arr: np.ndarray) -> None:
    """Full double precision, no header: R reads it with ``read.csv(header=FALSE)``."""
    np.savetxt(
        path,
        np.atleast_2d(np.asarray(arr, dtype=np.float64)).reshape(len(arr), -1),
        delimiter=",",
        fmt="%.17g",
    )


def run_r(script: str, workdir: Path) -> str:
    """Run ``script`` with ``setwd(workdir)``; fail the test with R's stderr on error."""
    path = workdir / "script.R"
    path.write_text(f'setwd("{workdir.as_posix()}")\n' + script)
    out = subprocess.run(["Rscript", str(path)], capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        pytest.fail(f"Rscript failed: {out.stderr[-2000:]}")
    return out.stdout


def read_csv(path: Path) -> np.ndarray:
    return np.loadtxt(path, delimiter=",", ndmin=2)
