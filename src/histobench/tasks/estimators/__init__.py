"""Estimators for the built-in tasks, each matching its reference implementation.

* :class:`E1071SVR` / :func:`svr_cross_val_predict`: R ``e1071::svm`` eps-regression
  (LUAD expression; many genes share one kernel per fold).
* :class:`GlmnetLogisticCV` / :func:`lasso_cross_val_predict`: R ``cv.glmnet`` binomial LASSO
  (LUAD mutation).
* :class:`FastLinearSVC`: scikit-learn ``LinearSVC`` one-vs-rest (CRC tissue).
"""

from __future__ import annotations

from histobench.tasks.estimators.glmnet import (
    GlmnetLogisticCV,
    lambda_sequence,
    lasso_cross_val_predict,
    logistic_lasso_path,
)
from histobench.tasks.estimators.linear_svc import FastLinearSVC
from histobench.tasks.estimators.svr import E1071SVR, svr_cross_val_predict

__all__ = [
    "E1071SVR",
    "FastLinearSVC",
    "GlmnetLogisticCV",
    "lambda_sequence",
    "lasso_cross_val_predict",
    "logistic_lasso_path",
    "svr_cross_val_predict",
]
