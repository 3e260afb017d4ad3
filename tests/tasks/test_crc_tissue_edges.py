"""crc-tissue cases found unchecked by mutation testing (see TESTING.md, "Mutation testing"):
two classes, a class missing from a training fold, the C option, the stored record."""

from __future__ import annotations

import numpy as np
import pytest

from histobench.benchmark.splits import make_plan
from histobench.plugins.specs import Dataset, Item
from histobench.tasks.crc_tissue import (
    CrcTissueOptions,
    CrcTissueTask,
    _fit_fold,
    _solver,
)
from histobench.tasks.estimators.linear_svc import FastLinearSVC


def _task_and_units(labels: list[str], **options: object):
    items = [Item(f"{lab}/{i}.png", path=None, label=lab) for i, lab in enumerate(labels)]  # type: ignore[arg-type]
    task = CrcTissueTask(CrcTissueOptions(n_jobs=1, **options))  # type: ignore[arg-type]
    units = task.units(Dataset("d", "tiles", items), items)
    return task, units


def test_two_classes_are_scored_with_both_decision_columns() -> None:
    labels = ["NORM"] * 12 + ["TUM"] * 18
    task, units = _task_and_units(labels)
    assert [m.tolist() for m in units.members] == [[i] for i in range(30)]  # one tile per unit
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 5))
    X[:, 0] += 8.0 * units.strata  # separable along the first feature
    plan = make_plan(units.ids, units.strata, units.groups, 2, 3, seed=0)
    result = task.evaluate(X, units, plan)
    assert result.metric == "accuracy"
    assert np.allclose(result.fold_scores, 1.0)
    scores = result.predictions[0].y_score
    assert scores is not None and scores.shape == (2, 30, 2)
    np.testing.assert_allclose(scores[..., 0], -scores[..., 1])  # binary: (−f, f)
    assert result.predictions[0].target == "class"
    np.testing.assert_array_equal(result.predictions[0].y_true, units.strata)
    for c, name in enumerate(task.classes):
        target = result.per_target[name]
        assert target.metric == "accuracy"
        assert target.extra == {"n_tiles": int((units.strata == c).sum())}  # 12 and 18
    assert result.details["classes"] == ["NORM", "TUM"]
    fits = result.details["fits"]
    assert fits["fits"] == 6 and fits["max_iterations"] >= 1
    assert 0.0 <= fits["max_relative_duality_gap"] <= fits["duality_gap_tol"]


def test_a_class_absent_from_training_is_never_predicted() -> None:
    rng = np.random.default_rng(1)
    y = np.repeat([0, 1, 2], 10)
    X = rng.normal(size=(30, 4)) + 3.0 * np.eye(3)[y] @ rng.normal(size=(3, 4))
    train = np.flatnonzero(y < 2)  # class 2 has no training rows in this fold
    test = np.arange(30)
    pred, full, _ = _fit_fold(X, y, train, test, CrcTissueOptions(n_jobs=1))
    assert full.dtype == np.float32 and full.shape == (30, 3)
    assert np.all(full[:, 2] == -np.inf) and set(pred.tolist()) <= {0, 1}


def test_the_c_option_reaches_the_estimator() -> None:
    rng = np.random.default_rng(2)
    y = np.repeat([0, 1, 2], 12)
    X = rng.normal(size=(36, 6)) + np.eye(3)[y] @ rng.normal(size=(3, 6))
    train, test = np.arange(0, 36, 2), np.arange(1, 36, 2)
    options = CrcTissueOptions(n_jobs=1, C=0.01, estimator="liblinear")
    _, full, _ = _fit_fold(X, y, train, test, options)
    ref = FastLinearSVC(C=0.01, max_iter=options.max_iter, dtype=np.float32, solver="liblinear")
    ref.fit(X[train], y[train])
    # Both stop on a certified duality gap, not at the exact optimum: equal to ~1e-4.
    np.testing.assert_allclose(full, ref.decision_function(X[test]), rtol=0, atol=2e-3)
    _, default_c, _ = _fit_fold(X, y, train, test, CrcTissueOptions(n_jobs=1))
    assert np.abs(full - default_c).max() > 0.1


@pytest.mark.parametrize(
    ("choice", "solver"), [("auto", "fast"), ("fast", "fast"), ("liblinear", "liblinear")]
)
def test_solver_rule(choice: str, solver: str) -> None:
    assert _solver(choice) == solver


def test_auto_runs_histobenchs_solvers_at_every_shape() -> None:
    """A small wide fold (the demo's kind) and a narrow one (a 384-wide embedding's kind): the
    default fits with the row-space Newton or L-BFGS, never liblinear, and predicts what a
    certified liblinear fit predicts (same objective, same gap rule)."""
    rng = np.random.default_rng(4)
    for n, p, first in ((60, 200, "newton"), (900, 24, "lbfgs")):
        y = np.arange(n) % 3
        X = np.abs(rng.normal(size=(n, p)) + 0.4 * np.eye(3)[y] @ rng.normal(size=(3, p)))
        train, test = np.arange(0, n, 2), np.arange(1, n, 2)
        _, auto, record = _fit_fold(X, y, train, test, CrcTissueOptions(n_jobs=1))
        assert record["solver"].split("+")[0] == first and record["converged"]
        _, lib, lib_record = _fit_fold(
            X, y, train, test, CrcTissueOptions(n_jobs=1, estimator="liblinear")
        )
        assert lib_record["solver"].startswith("liblinear")
        np.testing.assert_allclose(auto, lib, rtol=0, atol=2e-2)
        assert (auto.argmax(axis=1) == lib.argmax(axis=1)).mean() >= 0.98


def test_a_single_class_is_a_clear_error() -> None:
    from histobench.plugins.errors import DataError

    with pytest.raises(DataError, match="at least two classes"):
        _task_and_units(["TUM"] * 5)
