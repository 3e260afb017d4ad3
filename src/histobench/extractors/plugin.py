"""Entry point ``builtin-extractors``: the built-in extractors, registered like any plugin."""

from __future__ import annotations

from typing import Any

from histobench.plugins import CommandSpec, ExtractorSpec, hookimpl


@hookimpl
def histobench_extractors() -> list[ExtractorSpec[Any]]:
    from histobench.extractors.builtin import SPECS
    from histobench.extractors.ftx.extractor import FTX_SPEC

    return [*SPECS, FTX_SPEC]


@hookimpl
def histobench_commands() -> list[CommandSpec]:
    from histobench.extractors.ftx.cli import FINETUNE_COMMAND

    return [FINETUNE_COMMAND]
