"""Entry point ``builtin-extractors``: the built-in extractors, registered like any plugin."""

from __future__ import annotations

from typing import Any

from histobench.plugins import CommandSpec, ExtractorSpec, hookimpl


@hookimpl
def histobench_extractors() -> list[ExtractorSpec[Any]]:
    from histobench.extractors.builtin import SPECS
    from histobench.extractors.foundation.specs import FOUNDATION_SPECS
    from histobench.extractors.ftx.spec import FTX_SPEC
    from histobench.extractors.keras.specs import KERAS_SPECS

    return [*SPECS, FTX_SPEC, *KERAS_SPECS, *FOUNDATION_SPECS]


@hookimpl
def histobench_commands() -> list[CommandSpec]:
    from histobench.extractors.foundation.cli import WEIGHTS_COMMAND
    from histobench.extractors.ftx.cli import FINETUNE_COMMAND
    from histobench.extractors.keras.cli import CONVERT_COMMAND

    return [FINETUNE_COMMAND, CONVERT_COMMAND, WEIGHTS_COMMAND]
