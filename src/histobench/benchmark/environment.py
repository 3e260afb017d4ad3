"""What a run records about where it ran: versions, device, precision, code version."""

from __future__ import annotations

import hashlib
import platform
import sys
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import histobench

PACKAGE_ROOT = Path(histobench.__file__).parent
# The modules whose code decides feature values: a change to any of them changes cache keys.
FEATURE_CODE = ["benchmark/extraction.py", "benchmark/images.py", "extractors", "datasets/wsi"]


def _source_digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for base in paths:
        files = sorted(base.rglob("*.py")) if base.is_dir() else [base]
        for f in files:
            if f.is_file():
                h.update(f.relative_to(PACKAGE_ROOT).as_posix().encode())
                h.update(f.read_bytes())
    return h.hexdigest()[:10]


@lru_cache(maxsize=1)
def code_version() -> str:
    """Package version plus a digest of its source: distinguishes edited installs."""
    return f"{histobench.__version__}+{_source_digest([PACKAGE_ROOT])}"


@lru_cache(maxsize=1)
def feature_code_version() -> str:
    return f"{histobench.__version__}+{_source_digest([PACKAGE_ROOT / p for p in FEATURE_CODE])}"


def _version(dist: str) -> str | None:
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def resolve_device(requested: str) -> str:
    import torch

    if requested == "cuda" or (requested == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            from histobench.benchmark.errors import ConfigError

            raise ConfigError("--device cuda: no CUDA device is available on this machine")
        return "cuda"
    return "cpu"


def device_name(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    return platform.processor() or platform.machine()


def environment(device: str, precision: str, seed: int) -> dict[str, Any]:
    packages = [
        "histobench",
        "torch",
        "torchvision",
        "timm",
        "numpy",
        "scipy",
        "scikit-learn",
        "pydantic",
        "pluggy",
        "openslide-python",
        "torchstain",
    ]
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": {p: _version(p) for p in packages},
        "device": device,
        "device_name": device_name(device),
        "precision": precision,
        "seed": seed,
        "code_version": code_version(),
    }
