"""Split plans: exact pins, recipe inputs, boundaries and messages that mutation testing found
unchecked (see TESTING.md, "Mutation testing").

The balance tests in ``test_splits.py`` accept any plan within one item of the best; the pins
here say that the plan itself, under one ``PLAN_ALGORITHM`` version, never changes.
"""

from __future__ import annotations

import numpy as np
import pytest

from histobench.benchmark.splits import _fill_empty_folds, _Random, make_plan
from histobench.plugins.errors import DataError
from tests.benchmark.test_splits import _patients, _units

# --------------------------------------------------------------------------------------------
# The random stream and whole plans are pinned (a change needs a new PLAN_ALGORITHM)
# --------------------------------------------------------------------------------------------


def test_random_stream_is_pinned_and_uniform_on_the_unit_interval() -> None:
    # The top 53 bits of PCG64's raw output / 2**53: stable across NumPy versions.
    assert _Random(0, 0).uniform(4).tolist() == [
        0.6369616873214543,
        0.2697867137638703,
        0.04097352393619469,
        0.016527635528529094,
    ]
    u = _Random(3, 1).uniform(200_000)
    assert u.min() >= 0.0 and u.max() < 1.0
    assert u.max() > 0.999 and abs(u.mean() - 0.5) < 0.005


@pytest.mark.parametrize(
    ("case", "plan_id"),
    [
        ("ungrouped", "9e4fffd8bf8384ba"),
        ("30 patients", "4aeac0a71581ee85"),
        ("100 patients (sampled swap partners)", "f7dc8e13de64bc7c"),
    ],
)
def test_whole_plans_are_pinned(case: str, plan_id: str) -> None:
    if case == "ungrouped":
        ids, strata, _ = _units()
        plan = make_plan(ids, strata, ids, 3, 3, seed=1)
    elif case == "30 patients":
        ids, strata, groups = _patients(0)
        plan = make_plan(ids, strata, groups, 5, 5, seed=0)
    else:
        ids, strata, groups = _patients(5, n_patients=100)
        plan = make_plan(ids, strata, groups, 3, 5, seed=2)
    assert plan.plan_id == plan_id


@pytest.mark.parametrize(
    ("n_patients", "n_classes", "folds", "plan_id"),
    [
        (12, 2, 5, "842c42be5e216284"),  # few large groups: improvement passes and swaps run
        (12, 5, 5, "737a1946bfcee071"),  # many classes: per-class lower bounds matter
        (30, 3, 10, "243d97ec62615f99"),  # small folds: swaps decide the balance
        (64, 2, 3, "6d6243cc404cc8d4"),  # exactly _MAX_SWAP_PARTNERS groups: all are tried
        (120, 3, 5, "dff377acf28c1046"),  # many groups: sampled swap partners
    ],
)
def test_grouped_plans_across_shapes_are_pinned(
    n_patients: int, n_classes: int, folds: int, plan_id: str
) -> None:
    ids, strata, groups = _patients(0, n_patients=n_patients, n_classes=n_classes)
    assert make_plan(ids, strata, groups, 2, folds, seed=0).plan_id == plan_id


def test_recipe_depends_on_every_input() -> None:
    ids, strata, groups = _patients(0)
    base = make_plan(ids, strata, groups, 3, 5, seed=0)
    assert base.recipe is not None and len(base.recipe) == 16 and len(base.plan_id) == 16
    other_strata = strata.copy()
    other_strata[0] = (other_strata[0] + 1) % 3
    variants = [
        make_plan(ids, other_strata, groups, 3, 5, seed=0),
        make_plan(ids, strata, groups, 4, 5, seed=0),
        make_plan(ids, strata, groups, 3, 4, seed=0),
        make_plan(ids, strata, groups, 3, 5, seed=1),
    ]
    # A stored plan is found again by its recipe: any other input must be another recipe.
    assert len({base.recipe, *(v.recipe for v in variants)}) == 5


def test_default_grouping_is_by_patient() -> None:
    ids, strata, groups = _patients(0)
    assert make_plan(ids, strata, groups, 1, 5, seed=0).grouped_by == "patient"


# --------------------------------------------------------------------------------------------
# Boundaries and input errors
# --------------------------------------------------------------------------------------------


def test_as_many_groups_as_folds_is_leave_one_group_out() -> None:
    ids = [f"u{i}" for i in range(10)]
    groups = [f"p{i // 2}" for i in range(10)]  # 5 patients of 2 items
    plan = make_plan(ids, np.zeros(10, dtype=int), groups, 2, 5, seed=0)
    for r in range(2):
        assert sorted(np.bincount(plan.assignments[r], minlength=5).tolist()) == [2] * 5


def test_length_mismatch_of_strata_alone_is_an_error() -> None:
    ids = [f"u{i}" for i in range(10)]
    with pytest.raises(ValueError, match="same length"):
        make_plan(ids, np.zeros(9, dtype=int), ids, 1, 2, seed=0)


def test_duplicate_ids_and_empty_input_are_clear_errors() -> None:
    with pytest.raises(DataError, match="unit ids are not unique"):
        make_plan(["a", "a", "b"], np.zeros(3, dtype=int), ["a", "a", "b"], 1, 2, seed=0)
    with pytest.raises(DataError, match="only 0 patients/items for 2 folds"):
        make_plan([], np.zeros(0, dtype=int), [], 1, 2, seed=0)


@pytest.mark.parametrize(
    ("grouped_by", "word"), [("site", "sites"), ("none", "items"), ("patient", "patients/items")]
)
def test_too_few_groups_names_what_is_grouped(grouped_by: str, word: str) -> None:
    ids = [f"u{i}" for i in range(6)]
    groups = ["A", "A", "B", "B", "C", "C"]
    with pytest.raises(DataError, match=f"only 3 {word} for 5 folds; lower --folds or add data"):
        make_plan(ids, np.zeros(6, dtype=int), groups, 1, 5, seed=0, grouped_by=grouped_by)


def test_class_with_too_few_patients_is_named_without_class_names() -> None:
    ids = [f"u{i}" for i in range(12)]
    strata = np.array([0] * 8 + [1] * 4)
    groups = [f"p{i}" for i in range(8)] + ["q0", "q0", "q1", "q1"]  # class 1: 2 patients
    with pytest.raises(
        DataError,
        match="class '1' has 2 patients, fewer than the 3 folds; lower --folds or add data for",
    ):
        make_plan(ids, strata, groups, 1, 3, seed=0)


# --------------------------------------------------------------------------------------------
# The empty-fold repair (greedy balancing does not reach it, so it is tested on its own)
# --------------------------------------------------------------------------------------------


def test_an_empty_fold_gets_a_group_from_a_fold_that_can_spare_one() -> None:
    fold_of = np.array([0, 0, 0, 1, 2, 2])  # fold 3 empty; fold 1 has a single group
    _fill_empty_folds(np.ones((6, 2)), fold_of, 4, _Random(0, 0))
    sizes = np.bincount(fold_of, minlength=4)
    assert sizes.min() >= 1 and sizes.sum() == 6
    assert fold_of[3] == 1  # the only group of fold 1 stays
    # Two empty folds: both are filled, each from a fold that still has more than one group.
    fold_of = np.array([0, 0, 0, 0, 1, 1])
    _fill_empty_folds(np.ones((6, 2)), fold_of, 4, _Random(1, 0))
    assert np.bincount(fold_of, minlength=4).min() >= 1
    # A fold of exactly two groups can spare one.
    fold_of = np.array([0, 0, 1, 2])
    _fill_empty_folds(np.ones((4, 2)), fold_of, 4, _Random(2, 0))
    assert sorted(np.bincount(fold_of, minlength=4).tolist()) == [1, 1, 1, 1]
