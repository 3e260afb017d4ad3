"""Entry point ``builtin-extractors``: the built-in extractors, registered like any plugin."""

from __future__ import annotations

from histobench.benchmark.specs import ExtractorSpec
from histobench.plugins import hookimpl


@hookimpl
def histobench_extractors() -> list[ExtractorSpec]:
    from histobench.extractors.builtin import SPECS
    from histobench.extractors.ftx.extractor import FTX_SPEC

    return [*SPECS, FTX_SPEC]
