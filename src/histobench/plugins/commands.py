"""Commands that plugins add to ``bench`` (like datasette's ``register_commands``).

A plugin returns ``CommandSpec`` objects from ``histobench_commands``; ``bench`` adds one
subcommand for each. A command may build its own sub-subcommands in ``add_arguments`` (setting
``func`` on each with ``set_defaults``) and leave ``run`` as None.

A plugin can also add flags to a command it does not own with ``histobench_command_flags``:
the slides data set adds its tiling and device flags to ``bench extract`` that way, and turns
them into its own options with ``DatasetFlags.options``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CommandSpec:
    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    # Runs the parsed command and returns the exit code; raise a HistobenchError for a problem
    # the user can fix (``bench`` prints it on one line).
    run: Callable[[argparse.Namespace], int] | None = None
    description: str | None = None


@dataclass(frozen=True)
class DatasetFlags:
    """Flags of one data set plugin on a core command (e.g. the slide flags of ``bench extract``)."""

    command: str  # the command they extend, e.g. "extract"
    dataset: str  # the data set plugin they configure, e.g. "slides"
    add_arguments: Callable[[argparse.ArgumentParser], None]
    # Parsed flags → the data set's option values (validated by its options model).
    options: Callable[[argparse.Namespace], dict[str, Any]]
    # The flags of this group the user actually gave, to refuse them for other data sets.
    given: Callable[[argparse.Namespace], list[str]]
