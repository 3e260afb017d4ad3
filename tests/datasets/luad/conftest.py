"""Fixtures for the LUAD tests: the LUAD plugins registered even before the lead wires them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from histobench.plugins import hookimpl
from histobench.plugins.specs import DatasetSpec, TaskSpec

REAL_LABELS = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "labels"


class _LuadPlugin:
    """Registers the LUAD specs in code when the built-in plugins do not list them yet."""

    def __init__(self, tasks: list[TaskSpec], datasets: list[DatasetSpec]) -> None:
        self.tasks = tasks
        self.datasets = datasets

    @hookimpl
    def histobench_tasks(self) -> list[TaskSpec]:
        return self.tasks

    @hookimpl
    def histobench_datasets(self) -> list[DatasetSpec]:
        return self.datasets


@pytest.fixture
def luad_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from histobench.datasets.cohort import COHORT_DATASET_SPECS
    from histobench.plugins import manager
    from histobench.tasks.luad import LUAD_TASK_SPECS

    manager.get_plugins.cache_clear()
    plugins = manager.get_plugins()
    tasks = [s for s in LUAD_TASK_SPECS if s.name not in plugins.tasks.names()]
    datasets = [s for s in COHORT_DATASET_SPECS if s.name not in plugins.datasets.names()]
    if tasks or datasets:
        original = manager.make_plugin_manager
        extra = _LuadPlugin(tasks, datasets)

        def patched(extra_plugins: list | None = None):  # type: ignore[no-untyped-def]
            return original([*(extra_plugins or []), extra])

        monkeypatch.setattr(manager, "make_plugin_manager", patched)
        manager.get_plugins.cache_clear()
    yield
    manager.get_plugins.cache_clear()


@pytest.fixture
def real_labels() -> Path:
    path = REAL_LABELS / "LUAD-5-gene_TCGA.csv"
    if not path.is_file():
        pytest.skip(f"shared label table not found at {path}")
    return path
