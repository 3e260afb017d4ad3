"""A patient's vector is the mean of all its tiles, not the mean of its slides' means."""

from __future__ import annotations

import numpy as np

from histobench.benchmark.runner import pooled_features


def test_pooling_weights_each_slide_by_its_tile_count() -> None:
    slide_means = np.array([[0.0, 10.0], [4.0, 2.0], [1.0, 1.0], [7.0, 7.0]])
    tiles = np.array([1.0, 3.0, 2.0, 5.0])
    members = [np.array([0, 1]), np.array([2]), np.array([3, 2])]
    pooled = pooled_features(slide_means, members, tiles)
    # Patient 0: 1 tile at (0, 10) and 3 tiles at (4, 2) → (12/4, 16/4); unweighted: (2, 6).
    np.testing.assert_allclose(pooled[0], [3.0, 4.0])
    np.testing.assert_allclose(pooled[1], [1.0, 1.0])
    np.testing.assert_allclose(pooled[2], [(5 * 7 + 2 * 1) / 7, (5 * 7 + 2 * 1) / 7])


def test_pooling_of_single_rows_and_unknown_counts() -> None:
    rows = np.arange(8.0).reshape(4, 2)
    np.testing.assert_array_equal(
        pooled_features(rows, [np.array([2]), np.array([0])]), rows[[2, 0]]
    )
    # Without tile counts every row is one tile: the plain mean.
    np.testing.assert_allclose(pooled_features(rows, [np.array([0, 1, 3])]), [[8 / 3, 11 / 3]])
