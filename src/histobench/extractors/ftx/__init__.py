"""FTX: the study's two-step fine-tuning recipe (``bench finetune``) and the ``ftx`` extractor.

Heavy modules (torch, timm) are imported by the submodules, not here.
"""

from __future__ import annotations

__all__ = ["FTX_SPEC", "add_finetune_parser", "cmd_finetune"]


def __getattr__(name: str) -> object:
    # Lazy: `bench --help` must not import torch just to register the subcommand.
    if name == "FTX_SPEC":
        from histobench.extractors.ftx.extractor import FTX_SPEC

        return FTX_SPEC
    if name in ("add_finetune_parser", "cmd_finetune"):
        from histobench.extractors.ftx import cli

        return getattr(cli, name)
    raise AttributeError(name)
