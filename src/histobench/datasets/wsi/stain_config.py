"""Stain normalisation settings, apart from the normaliser (:mod:`.stain`) so that listing the
slides data set's options does not import torch."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class StainConfig(BaseModel):
    """Stain normalisation settings; part of the feature-cache key."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=True, description="Apply Macenko normalisation to every tile.")
    reference: Path | None = Field(
        default=None,
        description="Reference H&E tile to fit; None = torchstain's default reference.",
    )
    backend: Literal["numba", "torchstain"] = Field(
        default="numba",
        description="'numba': torchstain's algorithm compiled for whole chunks of tiles (~2.5x "
        "cheaper, pixels equal up to rounding); 'torchstain': torchstain itself, tile by tile.",
    )
    on_failure: Literal["skip", "keep"] = Field(
        default="skip",
        description="A tile whose stains cannot be estimated is dropped or kept as is.",
    )
    io: int = Field(
        default=240, gt=0, le=255, description="Transmitted light intensity (Macenko Io)."
    )
    alpha: float = Field(default=1.0, gt=0, lt=50, description="Percentile for the stain angles.")
    beta: float = Field(default=0.15, gt=0, description="Optical-density floor for stained pixels.")
    min_stained_fraction: float = Field(
        default=0.05,
        ge=0,
        le=1,
        description="Fail a tile whose stained pixels (all OD channels above beta) are fewer.",
    )
