"""Every hook a histobench plugin can implement. Reading this file tells a plugin author all.

A plugin is any module or object registered under the entry-point group ``histobench``;
built-ins register the same way (see pyproject.toml), so this API is exercised by every run.
"""

from __future__ import annotations

from typing import Any

import pluggy

from histobench.plugins.commands import CommandSpec, DatasetFlags
from histobench.plugins.specs import DatasetSpec, ExtractorSpec, TaskSpec

hookspec = pluggy.HookspecMarker("histobench")
hookimpl = pluggy.HookimplMarker("histobench")


@hookspec
def histobench_extractors() -> list[ExtractorSpec[Any]]:
    """Return the feature extractors this plugin provides."""
    raise NotImplementedError


@hookspec
def histobench_tasks() -> list[TaskSpec[Any]]:
    """Return the benchmark tasks this plugin provides."""
    raise NotImplementedError


@hookspec
def histobench_datasets() -> list[DatasetSpec[Any]]:
    """Return the data set readers this plugin provides."""
    raise NotImplementedError


@hookspec
def histobench_commands() -> list[CommandSpec]:
    """Return the ``bench`` subcommands this plugin adds (e.g. ``bench finetune``)."""
    raise NotImplementedError


@hookspec
def histobench_command_flags() -> list[DatasetFlags]:
    """Return flags this plugin's data sets add to core commands (e.g. ``bench extract``)."""
    raise NotImplementedError
