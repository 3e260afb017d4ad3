"""Fold fits that run in threads give each fit a share of the cores' BLAS threads: without it,
``n_jobs`` threads each start one BLAS thread per core and oversubscribe the machine (3.4x
slower crc-tissue evaluation measured on a loaded 2-core machine; ``_threads``)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from histobench.benchmark.splits import make_plan
from histobench.plugins.specs import Dataset, Item
from histobench.tasks import crc_tissue
from histobench.tasks.estimators import _threads, glmnet, svr


def _blas_threads() -> int:
    return max(m["num_threads"] for m in threadpool_info() if m["user_api"] == "blas")


@pytest.fixture
def four_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    """Four cores as far as the share is concerned; BLAS must start with more than one thread
    (otherwise a missing limit could not be seen)."""
    if _blas_threads() < 2:
        pytest.skip("BLAS runs one thread here: a missing limit would look the same")
    monkeypatch.setattr(_threads.os, "cpu_count", lambda: 4)


def test_shares(four_cores: None) -> None:
    assert [_threads.blas_threads_per_job(n) for n in (1, 2, 3, 4, 8)] == [4, 2, 1, 1, 1]
    before = _blas_threads()
    with _threads.share_cores_between(4):
        assert _blas_threads() == 1
    assert _blas_threads() == before  # restored on exit


def _blas_threads_in_each_fit(
    monkeypatch: pytest.MonkeyPatch, module: object, fit_name: str, run: Callable[[], object]
) -> list[int]:
    """BLAS threads seen inside every call of ``module.fit_name`` while ``run()`` runs."""
    seen: list[int] = []
    fit = getattr(module, fit_name)

    def recording(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(_blas_threads())
        return fit(*args, **kwargs)

    monkeypatch.setattr(module, fit_name, recording)
    run()
    return seen


def test_crc_tissue_fits_run_with_one_blas_thread_each(
    four_cores: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    labels = ["A", "B", "C"] * 10
    items = [Item(f"{lab}/{i}.png", path=None, label=lab) for i, lab in enumerate(labels)]  # type: ignore[arg-type]
    task = crc_tissue.CrcTissueTask(crc_tissue.CrcTissueOptions(n_jobs=4))
    units = task.units(Dataset("d", "tiles", items), items)
    plan = make_plan(units.ids, units.strata, units.groups, 2, 3, seed=0)
    X = np.random.default_rng(0).normal(size=(30, 8)) + np.eye(3)[units.strata] @ np.ones((3, 8))
    seen = _blas_threads_in_each_fit(
        monkeypatch, crc_tissue, "_fit_fold", lambda: task.evaluate(X, units, plan)
    )
    assert seen == [1] * 6


def test_svr_threads_run_with_one_blas_thread_each(
    four_cores: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(40, 5)), rng.normal(size=(40, 2))
    assignments = np.stack([rng.permutation(np.arange(40) % 4) for _ in range(2)])
    seen = _blas_threads_in_each_fit(
        monkeypatch,
        svr,
        "_fold_predict",
        lambda: svr.svr_cross_val_predict(X, Y, assignments, n_jobs=4),
    )
    assert seen == [1] * 8


def test_lasso_threads_run_with_one_blas_thread_each(
    four_cores: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(2)
    X = rng.normal(size=(60, 4))
    Y = (X[:, :1] + rng.normal(size=(60, 1)) > 0).astype(float)
    assignments = np.stack([rng.permutation(np.arange(60) % 3) for _ in range(2)])
    seen = _blas_threads_in_each_fit(
        monkeypatch,
        glmnet,
        "_outer_fold",
        lambda: glmnet.lasso_cross_val_predict_many(
            X, Y, assignments, n_jobs=4, backend="threading"
        ),
    )
    assert seen == [1] * 6
