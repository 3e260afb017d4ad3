"""The estimators keep scikit-learn's contract: scikit-learn's own estimator checks pass.

Tags declare what an estimator does not support (``GlmnetLogisticCV`` is binary only); no
check is skipped otherwise. Small settings keep the checks fast.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from histobench.plugins.errors import DataError
from histobench.tasks.estimators import E1071SVR, FastLinearSVC, GlmnetLogisticCV

ESTIMATORS = [
    FastLinearSVC(max_iter=200),
    E1071SVR(),
    GlmnetLogisticCV(n_folds=3, nlambda=20, random_state=0),
]


@parametrize_with_checks(ESTIMATORS)
def test_scikit_learn_estimator_checks(estimator, check) -> None:  # type: ignore[no-untyped-def]
    check(estimator)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_bad_input_is_a_one_line_histobench_error(estimator) -> None:  # type: ignore[no-untyped-def]
    # Inside histobench the same refusal must print as one line (a DataError), not a traceback.
    X = np.random.default_rng(0).normal(size=(30, 4))
    y = np.arange(30) % 2
    X[3, 1] = np.nan
    with pytest.raises(DataError) as info:
        estimator.fit(X, y)
    assert "NaN" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ValueError):
        estimator.fit(np.empty((0, 4)), y[:0])
