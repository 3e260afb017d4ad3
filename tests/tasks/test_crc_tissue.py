"""crc-tissue scoring on known features: the numbers must follow from the predictions."""

from __future__ import annotations

import numpy as np
import pytest

from histobench.benchmark.splits import make_plan
from histobench.plugins.specs import Dataset, Item
from histobench.tasks.crc_tissue import CrcTissueOptions, CrcTissueTask


def _task_and_units(labels: list[str]):
    items = [Item(f"{lab}/{i}.png", path=None, label=lab) for i, lab in enumerate(labels)]  # type: ignore[arg-type]
    task = CrcTissueTask(CrcTissueOptions(n_jobs=1))
    units = task.units(Dataset("d", "tiles", items), items)
    return task, units


def test_separable_features_score_perfectly() -> None:
    labels = ["ADI"] * 15 + ["TUM"] * 15 + ["STR"] * 15
    task, units = _task_and_units(labels)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(45, 20)) + 5 * np.eye(3)[units.strata] @ rng.normal(size=(3, 20))
    plan = make_plan(units.ids, units.strata, units.groups, 3, 5, seed=0)
    result = task.evaluate(X, units, plan)
    assert np.allclose(result.fold_scores, 1.0) and np.allclose(result.repeat_scores, 1.0)
    assert set(result.per_target) == {"ADI", "STR", "TUM"}
    assert result.predictions[0].y_pred.shape == (3, 45)


def test_scores_are_consistent_with_stored_predictions() -> None:
    """A repeat's score is the mean of its fold scores (the tested quantity), also when the
    folds differ in size (62 tiles in 5 folds) and pooled accuracy would differ from it."""
    labels = ["A"] * 21 + ["B"] * 20 + ["C"] * 21
    task, units = _task_and_units(labels)
    rng = np.random.default_rng(1)
    X = rng.normal(size=(62, 8)) + 0.6 * np.eye(3)[units.strata] @ rng.normal(size=(3, 8))
    plan = make_plan(units.ids, units.strata, units.groups, 4, 5, seed=3)
    result = task.evaluate(X, units, plan)
    pred = result.predictions[0].y_pred
    y = units.strata
    for r, k, _, test in plan.iter_folds():
        assert np.isclose(result.fold_scores[r, k], (pred[r, test] == y[test]).mean())
    assert np.allclose(result.repeat_scores, result.fold_scores.mean(axis=1))
    assert not np.allclose(result.repeat_scores, (pred == y).mean(axis=1), atol=1e-6, rtol=0)
    b = task.classes.index("B")
    class_b = result.per_target["B"]
    for r, k, _, test in plan.iter_folds():
        in_b = test[y[test] == b]
        assert np.isclose(class_b.fold_scores[r, k], (pred[r, in_b] == b).mean())
    assert np.allclose(class_b.repeat_scores, class_b.fold_scores.mean(axis=1))
    assert 0.4 < result.repeat_scores.mean() < 1.0  # noisy but informative features
    assert "mean of the K per-fold" in result.details["repeat_score"]


def test_standardisation_uses_the_training_rows_only() -> None:
    """Each fold's decision values equal a scaler + liblinear pipeline fitted on that fold's
    training rows alone. The test rows are shifted and stretched (a batch effect), so a scaler
    that also saw them would move every decision value."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    labels = ["A"] * 30 + ["B"] * 30 + ["C"] * 30
    items = [Item(f"{lab}/{i}.png", path=None, label=lab) for i, lab in enumerate(labels)]  # type: ignore[arg-type]
    task = CrcTissueTask(CrcTissueOptions(n_jobs=1, estimator="liblinear", max_iter=100_000))
    units = task.units(Dataset("d", "tiles", items), items)
    plan = make_plan(units.ids, units.strata, units.groups, 2, 3, seed=5)
    rng = np.random.default_rng(6)
    X = rng.normal(size=(90, 6)) + np.eye(3)[units.strata] @ rng.normal(size=(3, 6))
    X[plan.assignments[0] == 0] = 3.0 * X[plan.assignments[0] == 0] + 5.0
    result = task.evaluate(X, units, plan)
    scores = result.predictions[0].y_score
    y = units.strata
    for r, _, train, test in plan.iter_folds():
        ref = make_pipeline(StandardScaler(), LinearSVC(C=1.0, max_iter=100_000, dual="auto"))
        ref.fit(X[train], y[train])
        np.testing.assert_allclose(scores[r, test], ref.decision_function(X[test]), atol=2e-3)


def test_random_features_score_near_chance() -> None:
    labels = [c for c in "ABCD" for _ in range(40)]
    task, units = _task_and_units(labels)
    X = np.random.default_rng(2).normal(size=(160, 30))
    plan = make_plan(units.ids, units.strata, units.groups, 5, 5, seed=0)
    result = task.evaluate(X, units, plan)
    assert abs(result.repeat_scores.mean() - 0.25) < 0.08


def test_liblinear_iteration_cap_is_counted_not_warned_per_fit(
    capsys: pytest.CaptureFixture[str],
) -> None:
    import warnings

    labels = ["A"] * 20 + ["B"] * 20 + ["C"] * 20
    items = [Item(f"{lab}/{i}.png", path=None, label=lab) for i, lab in enumerate(labels)]  # type: ignore[arg-type]
    rng = np.random.default_rng(2)
    X = rng.normal(size=(60, 200))  # random labels: far from converged after 10 iterations
    for max_iter, expect_capped in ((10, True), (100_000, False)):
        task = CrcTissueTask(CrcTissueOptions(n_jobs=2, max_iter=max_iter, estimator="liblinear"))
        units = task.units(Dataset("d", "tiles", items), items)
        plan = make_plan(units.ids, units.strata, units.groups, 2, 3, seed=0)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = task.evaluate(X, units, plan)
        assert not [w for w in caught if "converge" in str(w.message)]
        fits = result.details["fits"]
        capped = fits["fits_not_converged"]
        assert fits["fits"] == 6 and sum(fits["solvers"].values()) == 6
        assert all(s.startswith("liblinear") for s in fits["solvers"])
        err = capsys.readouterr().err
        if expect_capped:
            assert capped >= 1 and fits["max_relative_duality_gap"] > fits["duality_gap_tol"]
            assert f"{capped} of 6 fits stopped at max_iter=10" in " ".join(err.split())
        else:
            assert capped == 0 and "max_iter" not in err
