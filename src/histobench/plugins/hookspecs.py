"""Every hook a histobench plugin can implement. Reading this file tells a plugin author all.

A plugin is any module or object registered under the entry-point group ``histobench``;
built-ins register the same way (see pyproject.toml), so this API is exercised by every run.
"""

from __future__ import annotations

import pluggy

from histobench.benchmark.specs import DatasetSpec, ExtractorSpec, TaskSpec

hookspec = pluggy.HookspecMarker("histobench")
hookimpl = pluggy.HookimplMarker("histobench")


@hookspec
def histobench_extractors() -> list[ExtractorSpec]:
    """Return the feature extractors this plugin provides."""
    raise NotImplementedError


@hookspec
def histobench_tasks() -> list[TaskSpec]:
    """Return the benchmark tasks this plugin provides."""
    raise NotImplementedError


@hookspec
def histobench_datasets() -> list[DatasetSpec]:
    """Return the data set readers this plugin provides."""
    raise NotImplementedError
