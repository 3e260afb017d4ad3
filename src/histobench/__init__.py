"""histobench: paired, reproducible benchmarks of feature extractors for computational pathology."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("histobench")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+source"

__all__ = ["__version__"]
