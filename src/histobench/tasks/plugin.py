"""Entry point ``builtin-tasks``: the study's three experiments."""

from __future__ import annotations

from histobench.plugins import hookimpl
from histobench.plugins.specs import TaskSpec


@hookimpl
def histobench_tasks() -> list[TaskSpec]:
    from histobench.tasks.crc_tissue import CrcTissueOptions, make_task
    from histobench.tasks.luad import LUAD_TASK_SPECS

    return [
        TaskSpec(
            name="crc-tissue",
            description="CRC tissue classes from tile features: linear SVC, accuracy (study exp. 1).",
            metric="accuracy",
            factory=make_task,
            options_model=CrcTissueOptions,
            standard_dataset="crc-val-he-7k",
            dataset_hint=(
                "fetch it with `bench data fetch crc-val-he-7k` (CRC-VAL-HE-7K, Zenodo record "
                "1214456), or pass --dataset PATH"
            ),
            demo_dataset="demo-tiles",
        ),
        *LUAD_TASK_SPECS,
    ]
