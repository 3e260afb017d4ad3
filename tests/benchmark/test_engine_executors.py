"""The executor interface: order, error delivery, spec parsing."""

from __future__ import annotations

import operator

import pytest

from histobench.benchmark.executors import InlineExecutor, make_executor
from histobench.plugins.errors import ConfigError, DataError


def _fail(message: str) -> None:
    raise DataError(message)


def test_inline_map_keeps_order_and_defers_errors() -> None:
    with make_executor("inline") as pool:
        assert isinstance(pool, InlineExecutor)
        assert list(pool.map(operator.neg, [3, 1, 2])) == [-3, -1, -2]
        future = pool.submit(_fail, "slide x: broken")  # raised at .result(), not at submit
        with pytest.raises(DataError, match="slide x: broken"):
            future.result()


def test_dask_local_threads_deliver_results_and_errors() -> None:
    with make_executor("dask-local", workers=2, processes=False) as pool:
        assert pool.describe() == {"executor": "dask-local", "workers": 2}
        assert list(pool.map(operator.neg, range(5))) == [0, -1, -2, -3, -4]
        with pytest.raises(DataError, match="broken"):
            pool.submit(_fail, "broken").result()


@pytest.mark.parametrize("spec", ["cluster", "dask://", "spark://h:1"])
def test_unknown_executor_spec_is_config_error(spec: str) -> None:
    with pytest.raises(ConfigError, match="expected local, inline, dask-local or dask://"):
        make_executor(spec)


def test_unreachable_scheduler_is_config_error() -> None:
    # Port 9 (discard) on localhost: nothing listens, so the connection is refused at once.
    with pytest.raises(ConfigError, match="cannot reach the Dask scheduler"):
        make_executor("dask://127.0.0.1:9", timeout="1s")


def test_dask_url_connects_to_a_running_scheduler_and_leaves_it_up() -> None:
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp",
                      dashboard_address=None) as cluster:  # fmt: skip
        host_port = cluster.scheduler_address.removeprefix("tcp://")
        with make_executor(f"dask://{host_port}") as pool:
            assert pool.name == f"dask:tcp://{host_port}" and pool.workers == 1
            assert list(pool.map(operator.neg, [1, 2])) == [-1, -2]
        # Closing the executor closes its client only: the cluster still serves others.
        with make_executor(f"dask://{host_port}") as again:
            assert again.submit(operator.neg, 5).result() == -5
