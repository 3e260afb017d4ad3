"""FTX on the demo cohort: the demo command's weights, passed to ``bench run`` explicitly."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import assert_one_line_error


@pytest.mark.slow
def test_ftx_on_demo_cohort_with_the_demo_weights(hb_home: Path, cli) -> None:  # type: ignore[no-untyped-def]
    # No special case in `bench run`: without weights, FTX is a one-line error naming the
    # folder it looked in, on the demo data as everywhere else.
    code, _, err = cli("run", "--extractor", "ftx", "--task", "luad-mutation", "--dataset", "demo")
    assert code != 0
    assert_one_line_error(err, str(hb_home / "weights" / "ftx"))

    from histobench.cli.demo_ftx import demo_finetune

    tuned = demo_finetune(device="cpu")  # what `bench demo` makes
    assert tuned.out.parent == hb_home / "weights" and tuned.out.name.startswith("ftx-demo-")
    code, out, err = cli(
        "run", "--extractor", "ftx", "--weights", str(tuned.out), "--task", "luad-mutation",
        "--dataset", "demo", "--repeats", "2", "--folds", "3", "--json",
    )  # fmt: skip
    assert code == 0, err
    record = json.loads(out)
    assert Path(record["config"]["resolved"]["extractor_options"]["weights"]) == tuned.out
    assert record["extractor"] == "ftx" and record["metric"] == "auc"
    # The demo cohort plants a visible mutation signal (nuclear size): FTX features find it.
    assert record["per_target"]["STK11"]["mean"] > 0.8
