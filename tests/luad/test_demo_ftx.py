"""``bench run --extractor ftx --task luad-mutation --dataset demo`` works on a fresh install."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import assert_one_line_error, write_textured_tiles


@pytest.mark.slow
def test_ftx_on_demo_cohort_out_of_the_box(hb_home: Path, cli) -> None:  # type: ignore[no-untyped-def]
    assert not (hb_home / "weights").exists()
    code, out, err = cli(
        "run", "--extractor", "ftx", "--task", "luad-mutation", "--dataset", "demo",
        "--repeats", "2", "--folds", "3", "--json",
    )  # fmt: skip
    assert code == 0, err
    record = json.loads(out)
    # The demo-size FTX was fine-tuned into HISTOBENCH_HOME and the run records which weights.
    weights = Path(record["config"]["resolved"]["extractor_options"]["weights"])
    assert weights.parent == hb_home / "weights" and weights.name.startswith("ftx-demo-")
    assert (weights / "weights.safetensors").is_file()
    assert record["extractor"] == "ftx" and record["metric"] == "auc"
    # The demo cohort plants a visible mutation signal (nuclear size): FTX features find it.
    assert record["per_target"]["STK11"]["mean"] > 0.8

    # Outside the demo, missing FTX weights stay a one-line error naming the folder.
    tiles = write_textured_tiles(hb_home / "tiles", {"TUM": 3, "STR": 3})
    code, _, err = cli("run", "--extractor", "ftx", "--task", "crc-tissue", "--dataset", tiles)
    assert code != 0
    assert_one_line_error(err, str(hb_home / "weights" / "ftx"))
