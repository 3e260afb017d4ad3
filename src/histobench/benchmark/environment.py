"""What a run records about where it ran: versions, device, precision, code version."""

from __future__ import annotations

import hashlib
import importlib.util
import platform
import sys
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import histobench

PACKAGE_ROOT = Path(histobench.__file__).parent
# The modules whose code decides feature values: a change to any of them changes cache keys.
# Named as modules (a package stands for all its modules) and resolved through importlib, so a
# module that moves or disappears is an error here instead of silently leaving the key.
FEATURE_CODE = (
    "histobench.benchmark.extraction",
    "histobench.benchmark.images",
    "histobench.benchmark.devices",
    "histobench.benchmark.streaming",
    "histobench.benchmark.engine",
    "histobench.benchmark.h5io",
    "histobench.plugins.torch",
    "histobench.plugins.fusion",
    "histobench.extractors",
    "histobench.datasets.wsi",
)


def module_files(name: str) -> list[Path]:
    """The source files of a module, or of every module in a package."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise RuntimeError(f"feature code module {name} not found: update FEATURE_CODE")
    if spec.submodule_search_locations:
        return sorted(f for d in spec.submodule_search_locations for f in Path(d).rglob("*.py"))
    return [Path(spec.origin)]


def _source_digest(files: list[Path]) -> str:
    h = hashlib.sha256()
    for f in files:
        h.update(f.relative_to(PACKAGE_ROOT).as_posix().encode())
        h.update(f.read_bytes())
    return h.hexdigest()[:10]


@lru_cache(maxsize=1)
def code_version() -> str:
    """Package version plus a digest of its source: distinguishes edited installs."""
    return f"{histobench.__version__}+{_source_digest(sorted(PACKAGE_ROOT.rglob('*.py')))}"


@lru_cache(maxsize=1)
def feature_code_version() -> str:
    files = [f for name in FEATURE_CODE for f in module_files(name)]
    return f"{histobench.__version__}+{_source_digest(files)}"


def _version(dist: str) -> str | None:
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def resolve_device(requested: str) -> str:
    import torch

    if requested == "cuda" or (requested == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            from histobench.plugins.errors import ConfigError

            raise ConfigError("--device cuda: no CUDA device is available on this machine")
        return "cuda"
    return "cpu"


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        import torch

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
