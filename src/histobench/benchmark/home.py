"""The histobench home folder (``HISTOBENCH_HOME``, default ``~/.histobench``)."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    root = os.environ.get("HISTOBENCH_HOME")
    path = Path(root).expanduser() if root else Path.home() / ".histobench"
    path.mkdir(parents=True, exist_ok=True)
    return path


def results_db() -> Path:
    return home() / "results.sqlite"


def features_dir() -> Path:
    return _sub("features")


def weights_dir() -> Path:
    return _sub("weights")


def data_dir() -> Path:
    return _sub("data")


def reports_dir() -> Path:
    return _sub("reports")


def _sub(name: str) -> Path:
    path = home() / name
    path.mkdir(parents=True, exist_ok=True)
    return path
