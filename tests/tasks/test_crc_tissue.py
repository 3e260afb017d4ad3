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
    labels = ["A"] * 20 + ["B"] * 20 + ["C"] * 20
    task, units = _task_and_units(labels)
    rng = np.random.default_rng(1)
    X = rng.normal(size=(60, 8)) + 0.6 * np.eye(3)[units.strata] @ rng.normal(size=(3, 8))
    plan = make_plan(units.ids, units.strata, units.groups, 4, 5, seed=3)
    result = task.evaluate(X, units, plan)
    pred = result.predictions[0].y_pred
    y = units.strata
    assert np.allclose(result.repeat_scores, (pred == y).mean(axis=1))
    for r, k, _, test in plan.iter_folds():
        assert np.isclose(result.fold_scores[r, k], (pred[r, test] == y[test]).mean())
    b = task.classes.index("B")
    assert np.allclose(result.per_target["B"].repeat_scores, (pred[:, y == b] == b).mean(axis=1))
    assert 0.4 < result.repeat_scores.mean() < 1.0  # noisy but informative features


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
        capped = result.details["fits_at_max_iter"]
        err = capsys.readouterr().err
        if expect_capped:
            assert capped >= 1
            assert f"stopped at max_iter=10 in {capped} of 6 fits" in " ".join(err.split())
        else:
            assert capped == 0 and "max_iter" not in err
