"""The one plugin manager: loads the ``histobench`` entry-point group and indexes the specs.

Set ``HISTOBENCH_TRACE_HOOKS=1`` to print every hook call and its result to stderr.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Generic, TypeVar

import pluggy

from histobench.plugins import hookspecs
from histobench.plugins.commands import CommandSpec, DatasetFlags
from histobench.plugins.errors import PluginError
from histobench.plugins.specs import DatasetSpec, ExtractorSpec, TaskSpec

ENTRY_POINT_GROUP = "histobench"
SpecT = TypeVar("SpecT", ExtractorSpec[Any], TaskSpec[Any], DatasetSpec[Any], CommandSpec)


@dataclass(frozen=True)
class Provided(Generic[SpecT]):
    """A spec together with the plugin (and distribution) that provided it."""

    spec: SpecT
    plugin: str
    distribution: str


class Registry(Generic[SpecT]):
    """Specs of one kind by name; refuses duplicate names loudly."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Provided[SpecT]] = {}

    def add(self, entry: Provided[SpecT]) -> None:
        name = entry.spec.name
        if name in self._entries:
            first = self._entries[name]
            raise PluginError(
                f"{self.kind} '{name}' is registered twice: by plugin '{first.plugin}' "
                f"({first.distribution}) and by plugin '{entry.plugin}' ({entry.distribution}); "
                "uninstall one of them or rename its entry"
            )
        self._entries[name] = entry

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entries(self) -> list[Provided[SpecT]]:
        return [self._entries[n] for n in self.names()]

    def get(self, name: str) -> Provided[SpecT]:
        if name in self._entries:
            return self._entries[name]
        # "timm:resnet18" resolves to the prefix spec "timm".
        head = name.split(":", 1)[0]
        entry = self._entries.get(head)
        if entry is not None and getattr(entry.spec, "prefix", False) and ":" in name:
            return entry
        known = ", ".join(self.names()) or "none"
        raise PluginError(f"unknown {self.kind} '{name}' (known: {known}); see `bench list`")


class Plugins:
    """Everything the installed plugins provide."""

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm
        self.extractors: Registry[ExtractorSpec[Any]] = Registry("extractor")
        self.tasks: Registry[TaskSpec[Any]] = Registry("task")
        self.datasets: Registry[DatasetSpec[Any]] = Registry("dataset")
        self.commands: Registry[CommandSpec] = Registry("command")
        self.command_flags: list[DatasetFlags] = []
        dists = {
            id(plugin): f"{d.project_name} {d.version}" for plugin, d in pm.list_plugin_distinfo()
        }
        for plugin in pm.get_plugins():
            name = pm.get_name(plugin) or repr(plugin)
            dist = dists.get(id(plugin), "registered in code")
            for hook, registry in (
                ("histobench_extractors", self.extractors),
                ("histobench_tasks", self.tasks),
                ("histobench_datasets", self.datasets),
                ("histobench_commands", self.commands),
            ):
                caller = pm.subset_hook_caller(
                    hook, remove_plugins=[p for p in pm.get_plugins() if p is not plugin]
                )
                for specs in caller():
                    for spec in specs or []:
                        registry.add(Provided(spec, name, dist))  # type: ignore[arg-type]
        for flags in pm.hook.histobench_command_flags():
            self.command_flags.extend(flags or [])

    def flags_for(self, command: str) -> list[DatasetFlags]:
        """The data set flag groups that plugins add to ``command``."""
        return [f for f in self.command_flags if f.command == command]


def make_plugin_manager(extra_plugins: list[Any] | None = None) -> pluggy.PluginManager:
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    if os.environ.get("HISTOBENCH_TRACE_HOOKS"):
        pm.trace.root.setwriter(sys.stderr.write)
        pm.enable_tracing()
    try:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    except Exception as exc:  # a broken third-party plugin must not give a traceback
        raise PluginError(
            f"could not load a histobench plugin: {type(exc).__name__}: {exc}"
        ) from exc
    for plugin in extra_plugins or []:
        pm.register(plugin)
    return pm


@lru_cache(maxsize=1)
def get_plugins() -> Plugins:
    """The process-wide plugin index (built once; plugins are installed packages)."""
    return Plugins(make_plugin_manager())
