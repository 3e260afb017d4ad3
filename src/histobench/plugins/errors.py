"""Errors that reach the user as one line, never as a traceback."""

from __future__ import annotations


class HistobenchError(Exception):
    """A problem the user can fix; the CLI prints ``str(error)`` on one line and exits non-zero."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        # Collapse to one line: the CLI contract is a single-line error.
        super().__init__(" ".join(str(message).split()))


class ConfigError(HistobenchError):
    """Invalid configuration: a file, a field or a flag. Exit code 2, like argparse."""

    exit_code = 2


class DataError(HistobenchError):
    """A data set that cannot be used at all (missing, empty, unusable labels)."""


class PluginError(HistobenchError):
    """Unknown plugin names, duplicate registrations, broken plugin packages."""

    exit_code = 2


class WeightsError(HistobenchError):
    """Model weights that are missing, unreadable or do not fit the architecture."""
