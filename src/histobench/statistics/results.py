"""The one result type every paired test returns, and the errors the tests raise.

A result is a frozen dataclass of plain floats and strings so that it can be stored with a run,
printed by the CLI and compared in tests without numpy in the way (``to_dict`` is JSON-ready).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

ALTERNATIVES = ("two-sided", "greater", "less")


class StatisticsError(ValueError):
    """A statistical test that cannot be run on the scores given (too few repeats, bad shapes).

    The statistics package depends on numpy and scipy only; the command line reports this
    error on one line like every other user-fixable error.
    """

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


@dataclass(frozen=True)
class TestResult:
    """The outcome of one paired comparison of extractor A against extractor B.

    ``effect_size`` is the mean paired difference A − B in the metric's units unless ``notes``
    says otherwise; ``ci_low``/``ci_high`` bound it at 95 % (two-sided) unless stated.
    """

    __test__ = False  # not a pytest test class, despite the name

    test: str
    statistic: float
    p_value: float
    df: float | None
    effect_size: float
    ci_low: float
    ci_high: float
    n: int
    alternative: str
    notes: str

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values; non-finite floats become ``None`` (JSON has no NaN/inf)."""
        return {k: _jsonable(v) for k, v in asdict(self).items()}


def _jsonable(value: Any) -> Any:
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def check_alternative(alternative: str) -> str:
    if alternative not in ALTERNATIVES:
        raise StatisticsError(
            f"alternative must be one of {', '.join(ALTERNATIVES)}, not {alternative!r}"
        )
    return alternative


def paired_arrays(
    a: Any, b: Any, *, ndim: int | tuple[int, ...], what: str
) -> tuple[np.ndarray, np.ndarray]:
    """Validate two paired score arrays of the same shape; ``what`` names them in errors."""
    xa = np.asarray(a, dtype=float)
    xb = np.asarray(b, dtype=float)
    allowed = (ndim,) if isinstance(ndim, int) else ndim
    if xa.ndim not in allowed or xb.ndim not in allowed:
        dims = " or ".join(f"{d}-D" for d in allowed)
        raise StatisticsError(f"{what} must be {dims} arrays, got shapes {xa.shape} and {xb.shape}")
    if xa.shape != xb.shape:
        raise StatisticsError(
            f"{what} must be paired (same shape), got shapes {xa.shape} and {xb.shape}"
        )
    return xa, xb


def finite_differences(a: np.ndarray, b: np.ndarray, *, what: str) -> np.ndarray:
    """Paired differences A − B with pairs that hold a NaN dropped (a fold that could not be
    scored for either extractor carries no paired information)."""
    d = (a - b).ravel()
    d = d[np.isfinite(d)]
    if d.size == 0:
        raise StatisticsError(f"{what} hold no finite paired scores")
    return d
