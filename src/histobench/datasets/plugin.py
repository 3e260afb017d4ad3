"""Entry point ``builtin-datasets``: tile folders and the synthetic demo tiles."""

from __future__ import annotations

from histobench.plugins import CommandSpec, DatasetFlags, hookimpl
from histobench.plugins.specs import DatasetSpec


@hookimpl
def histobench_datasets() -> list[DatasetSpec]:
    from histobench.datasets.cohort import COHORT_DATASET_SPECS
    from histobench.datasets.demo import DemoOptions, load_demo
    from histobench.datasets.tile_folder import (
        TileFolderOptions,
        load_tile_folder,
        looks_like_tile_folder,
    )
    from histobench.datasets.wsi.dataset import SLIDE_DATASET_SPECS

    return [
        DatasetSpec(
            name="tile-folder",
            description="Tiles in class folders (NCT-CRC-HE layout: <root>/<CLASS>/<tile>).",
            factory=load_tile_folder,
            options_model=TileFolderOptions,
            detect=looks_like_tile_folder,
        ),
        DatasetSpec(
            name="demo-tiles",
            description="Synthetic H&E-like tiles of the nine CRC classes (generated, seeded).",
            factory=load_demo,
            options_model=DemoOptions,
        ),
        *COHORT_DATASET_SPECS,
        *SLIDE_DATASET_SPECS,
    ]


@hookimpl
def histobench_command_flags() -> list[DatasetFlags]:
    """The slide flags of ``bench extract`` (tiling, stain, executor, devices)."""
    from histobench.datasets.wsi.flags import SLIDE_EXTRACT_FLAGS

    return [SLIDE_EXTRACT_FLAGS]


@hookimpl
def histobench_commands() -> list[CommandSpec]:
    from histobench.datasets.fetch.cli import DATA_COMMAND

    return [DATA_COMMAND]
