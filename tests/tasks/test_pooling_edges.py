"""Pooling edge cases found unchecked by mutation testing (see TESTING.md, "Mutation testing"):
units that all hold the same number of rows, and no units at all."""

from __future__ import annotations

import numpy as np

from histobench.benchmark.runner import pooled_features


def test_units_of_two_rows_each_give_one_mean_row_per_unit() -> None:
    rows = np.arange(12.0).reshape(6, 2)
    members = [np.array([0, 1]), np.array([2, 5]), np.array([4, 3])]
    pooled = pooled_features(rows, members)
    np.testing.assert_allclose(pooled, [[1.0, 2.0], [7.0, 8.0], [7.0, 8.0]])
    weighted = pooled_features(rows, members, np.array([1.0, 3.0, 1.0, 1.0, 1.0, 1.0]))
    np.testing.assert_allclose(weighted[0], [1.5, 2.5])  # (1·(0, 1) + 3·(2, 3)) / 4


def test_no_units_give_an_empty_matrix_of_the_feature_width() -> None:
    rows = np.ones((3, 4), dtype=np.float32)
    pooled = pooled_features(rows, [])
    assert pooled.shape == (0, 4) and pooled.dtype == np.float32
