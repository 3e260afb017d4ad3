"""Input checks shared by the estimators: scikit-learn's own helpers, histobench's error type.

The estimators follow scikit-learn's contract (``validate_data``, ``check_is_fitted``; bad input
is a ``ValueError``, an unfitted model a ``NotFittedError``), so they work in any scikit-learn
pipeline. Inside histobench the same errors must print as one line without a traceback, so bad
input raises :class:`EstimatorInputError`, which is both a ``ValueError`` and a ``DataError``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data

from histobench.plugins.errors import DataError


class EstimatorInputError(DataError, ValueError):
    """Bad input to an estimator: scikit-learn expects a ValueError, the CLI a DataError."""


def _one_line(err: ValueError) -> EstimatorInputError:
    return EstimatorInputError(" ".join(str(err).split()))


def fit_data(estimator: Any, X: Any, y: Any, *, classifier: bool) -> tuple[np.ndarray, np.ndarray]:
    """``X`` as a finite float64 (n, p) array with n >= 1, ``y`` as a 1-D array of n labels.

    Sets ``n_features_in_`` (and ``feature_names_in_`` for a DataFrame) on ``estimator``.
    """
    try:
        X, y = validate_data(
            estimator, X, y, dtype=np.float64, y_numeric=not classifier, reset=True
        )
        if classifier:
            check_classification_targets(y)
    except ValueError as err:
        raise _one_line(err) from None
    return X, y


def predict_data(estimator: Any, X: Any) -> np.ndarray:
    """``X`` checked against the fitted model: same number of features, finite, non-empty."""
    check_is_fitted(estimator)
    try:
        return validate_data(estimator, X, dtype=np.float64, reset=False)
    except ValueError as err:
        raise _one_line(err) from None
