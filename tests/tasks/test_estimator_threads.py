"""Fold fits that run in threads give each fit a share of the cores' BLAS threads: without it,
``n_jobs`` threads each start one BLAS thread per core and oversubscribe the machine (3.4x
slower crc-tissue evaluation measured on a loaded 2-core machine; ``_threads``)."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from histobench.benchmark.splits import make_plan
from histobench.plugins.specs import Dataset, Item
from histobench.tasks import crc_tissue
from histobench.tasks.estimators import _threads, svr


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


def test_crc_tissue_fits_run_with_one_blas_thread_each(
    four_cores: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    fit = crc_tissue._fit_fold

    def recording(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(_blas_threads())
        return fit(*args, **kwargs)

    monkeypatch.setattr(crc_tissue, "_fit_fold", recording)
    labels = ["A", "B", "C"] * 10
    items = [Item(f"{lab}/{i}.png", path=None, label=lab) for i, lab in enumerate(labels)]  # type: ignore[arg-type]
    task = crc_tissue.CrcTissueTask(crc_tissue.CrcTissueOptions(n_jobs=4))
    units = task.units(Dataset("d", "tiles", items), items)
    plan = make_plan(units.ids, units.strata, units.groups, 2, 3, seed=0)
    X = np.random.default_rng(0).normal(size=(30, 8)) + np.eye(3)[units.strata] @ np.ones((3, 8))
    task.evaluate(X, units, plan)
    assert seen == [1] * 6


def test_svr_threads_run_with_one_blas_thread_each(
    four_cores: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[int] = []
    fold = svr._fold_predict

    def recording(*args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(_blas_threads())
        return fold(*args, **kwargs)

    monkeypatch.setattr(svr, "_fold_predict", recording)
    rng = np.random.default_rng(1)
    X, Y = rng.normal(size=(40, 5)), rng.normal(size=(40, 2))
    assignments = np.stack([rng.permutation(np.arange(40) % 4) for _ in range(2)])
    svr.svr_cross_val_predict(X, Y, assignments, n_jobs=4)
    assert seen == [1] * 8
