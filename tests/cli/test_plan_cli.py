"""``bench plan export`` and ``bench run --plan / --group-by / --patients`` end to end."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from histobench.benchmark.store import ResultsStore
from tests.conftest import assert_one_line_error, small_run_config, write_textured_tiles


def _barcoded_tiles(tmp_path: Path) -> Path:
    """30 tiles of 6 TCGA patients from 3 tissue-source sites, every patient in every class."""
    root = write_textured_tiles(tmp_path / "tiles", {"A": 10, "B": 10, "C": 10}, size=32)
    for tile in sorted(root.glob("*/*.png")):
        i = int(tile.stem.split("-")[1])
        tile.rename(tile.with_name(f"{tile.stem}_TCGA-S{i % 3}-{i % 6:04d}-01Z.png"))
    return root


def _run(cli, *args: str) -> dict:  # type: ignore[no-untyped-def]
    code, out, err = cli("run", *args, "--json")
    assert code == 0, err
    return json.loads(out)


def _folds_of(path: Path, column: str) -> dict[tuple[str, str], set[str]]:
    folds: dict[tuple[str, str], set[str]] = {}
    with path.open() as fh:
        for row in csv.DictReader(fh):
            folds.setdefault((row["repeat"], row[column]), set()).add(row["fold"])
    return folds


def test_export_import_pairs_runs_and_site_plans_differ(cli, tmp_path: Path, hb_home) -> None:  # type: ignore[no-untyped-def]
    config = small_run_config(tmp_path / "run.toml", _barcoded_tiles(tmp_path))
    first = _run(cli, "--config", config)
    assert first["config"]["cv"]["group_by"] == "patient"
    out = tmp_path / "plan.csv"
    code, text, err = cli("plan", "export", first["run_id"], "--out", out)
    assert code == 0, err
    assert "60 rows written" in text
    rows = out.read_text().splitlines()
    assert rows[0] == "unit,patient,repeat,fold,site" and len(rows) == 1 + 2 * 30
    assert all(len(f) == 1 for f in _folds_of(out, "patient").values())

    again = _run(cli, "--config", config, "--plan", out)
    assert again["plan_id"] == first["plan_id"]  # the same plan: the runs are paired
    by_site = _run(cli, "--config", config, "--group-by", "site")
    assert by_site["plan_id"] != first["plan_id"]
    site_csv = tmp_path / "site.csv"
    assert cli("plan", "export", by_site["plan_id"], "--out", site_csv)[0] == 0
    assert all(len(f) == 1 for f in _folds_of(site_csv, "site").values())

    # A plan that splits a patient: one line naming the file and the row; nothing stored.
    lines = out.read_text().splitlines()
    unit, patient, repeat, fold, site = lines[1].split(",")
    lines[1] = ",".join([unit, patient, repeat, str((int(fold) + 1) % 3), site])
    out.write_text("\n".join(lines) + "\n")
    code, _, err = cli("run", "--config", config, "--plan", out)
    assert code != 0
    assert_one_line_error(err, str(out), "line ", "in folds")
    with ResultsStore(hb_home / "results.sqlite") as store:
        assert len(store.runs()) == 3  # the three good runs, nothing of the bad one


def test_patients_map_groups_a_tile_folder(cli, tmp_path: Path, hb_home) -> None:  # type: ignore[no-untyped-def]
    root = write_textured_tiles(tmp_path / "tiles", {"A": 8, "B": 8}, size=32)
    rows = ["item,patient"] + [f"{t.name},P{int(t.stem[-1]) % 4}" for t in root.glob("*/*.png")]
    (tmp_path / "map.csv").write_text("\n".join(rows) + "\n")
    config = small_run_config(tmp_path / "run.toml", root)
    record = _run(cli, "--config", config, "--patients", tmp_path / "map.csv")
    out = tmp_path / "plan.csv"
    assert cli("plan", "export", record["run_id"], "--out", out)[0] == 0
    folds = _folds_of(out, "patient")
    assert {p for _, p in folds} == {"P0", "P1", "P2", "P3"}
    assert all(len(f) == 1 for f in folds.values())
    plain = _run(cli, "--config", config)
    assert plain["plan_id"] != record["plan_id"]


def test_patients_map_on_a_cohort_is_a_one_line_error(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "map.csv").write_text("item,patient\nx.png,P1\n")
    code, _, err = cli(
        "run", "--task", "luad-mutation", "--dataset", "demo", "--patients", tmp_path / "map.csv"
    )
    assert code == 2
    assert_one_line_error(err, "--patients: the demo-cohort data set takes no patients map")
