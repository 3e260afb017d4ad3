"""Split plans: stratified, grouped, seeded, identified by content, shared by extractors."""

from __future__ import annotations

import numpy as np
import pytest

from histobench.benchmark.splits import make_plan
from histobench.plugins.errors import DataError


def _units(n_per_class=(12, 9, 15), patients_per=3):
    ids, strata, groups = [], [], []
    for c, n in enumerate(n_per_class):
        for i in range(n):
            ids.append(f"c{c}-{i}")
            strata.append(c)
            groups.append(f"p{c}-{i // patients_per}")
    return ids, np.array(strata), groups


def test_every_unit_is_tested_once_per_repeat_and_strata_are_balanced() -> None:
    ids, strata, _ = _units()
    plan = make_plan(ids, strata, ids, repeats=4, folds=3, seed=1)
    assert plan.assignments.shape == (4, len(ids))
    for r in range(4):
        assert set(np.unique(plan.assignments[r])) == {0, 1, 2}
        for c in range(3):
            counts = np.bincount(plan.assignments[r, strata == c], minlength=3)
            assert counts.max() - counts.min() <= 1  # stratified
    # Repeats are different draws.
    assert not np.array_equal(plan.assignments[0], plan.assignments[1])


def test_patients_never_straddle_folds() -> None:
    ids, strata, groups = _units(patients_per=3)
    plan = make_plan(ids, strata, groups, repeats=5, folds=3, seed=0)
    g = np.array(groups)
    for r in range(5):
        for patient in set(groups):
            assert len(set(plan.assignments[r, g == patient])) == 1


def test_plan_is_deterministic_and_identified_by_its_inputs() -> None:
    ids, strata, groups = _units()
    a = make_plan(ids, strata, groups, 3, 3, seed=7)
    b = make_plan(ids, strata, groups, 3, 3, seed=7)
    c = make_plan(ids, strata, groups, 3, 3, seed=8)
    assert a.plan_id == b.plan_id and np.array_equal(a.assignments, b.assignments)
    assert c.plan_id != a.plan_id and not np.array_equal(a.assignments, c.assignments)
    d = make_plan(ids[:-1], strata[:-1], groups[:-1], 3, 3, seed=7)
    assert d.plan_id != a.plan_id


def test_split_and_sizes() -> None:
    ids, strata, _ = _units((10, 10))
    plan = make_plan(ids, strata, ids, 2, 5, seed=0)
    train, test = plan.split(1, 2)
    assert len(test) == 4 and len(train) == 16 and not set(train) & set(test)
    assert plan.mean_train_test_sizes() == (16.0, 4.0)


def test_class_with_fewer_items_than_folds_is_a_clear_error() -> None:
    ids, strata, _ = _units((10, 2))
    with pytest.raises(DataError, match="class 'TUM' has 2 items, fewer than the 5 folds"):
        make_plan(ids, strata, ids, 1, 5, seed=0, class_names=["STR", "TUM"])
