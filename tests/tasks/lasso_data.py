"""Generated data shared by the LASSO (glmnet-semantics) estimator tests."""

from __future__ import annotations

import numpy as np


def planted_logistic(
    n: int, p: int, seed: int, label_dtype: type = float
) -> tuple[np.ndarray, np.ndarray]:
    """Columns on mixed scales/offsets and a planted 3-feature logistic signal; 0/1 labels."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p)) * rng.uniform(0.5, 3.0, size=p) + rng.normal(size=p)
    Z = (X - X.mean(0)) / X.std(0)
    eta = 1.2 * Z[:, 0] - 0.9 * Z[:, 1] + 0.6 * Z[:, 2]
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-eta))).astype(label_dtype)
    return X, y
