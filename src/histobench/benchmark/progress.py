"""Progress bars on stderr (stdout stays clean for --json)."""

from __future__ import annotations

import os

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

stderr_console = Console(stderr=True)


def make_progress(unit: str = "tiles") -> Progress:
    """A bar with the throughput in ``unit``/s; silent when HISTOBENCH_QUIET is set."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=stderr_console,
        disable=bool(os.environ.get("HISTOBENCH_QUIET")),
        transient=False,
    )


def rate_text(done: int, seconds: float, unit: str) -> str:
    return f"{done / seconds:.1f} {unit}/s" if seconds > 0 else ""
