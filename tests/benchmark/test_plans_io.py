"""Split plans in and out: CSV export/import keeps a plan's identity; grouping by site."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from histobench.benchmark.config import CVConfig, RunConfig
from histobench.benchmark.plans import plan_groups, read_plan_csv, unit_sites, write_plan_csv
from histobench.benchmark.runner import get_or_make_plan
from histobench.benchmark.splits import make_plan
from histobench.benchmark.store import ResultsStore
from histobench.plugins.errors import DataError
from histobench.plugins.specs import Dataset, Item, Units


def _cohort(n_sites: int = 4, per_site: int = 5, tiles: int = 3):
    """Tiles of TCGA patients: ``tiles`` per patient, ``per_site`` patients per site."""
    items, strata = [], []
    for s in range(n_sites):
        for p in range(per_site):
            patient = f"TCGA-S{s}-{p:04d}"
            for t in range(tiles):
                items.append(
                    Item(f"{patient}-t{t}.png", Path("."), label=str(t % 2), patient=patient)
                )
                strata.append(t % 2)
    units = Units(
        ids=[it.item_id for it in items],
        strata=np.array(strata),
        groups=[str(it.patient) for it in items],
        members=[np.array([i]) for i in range(len(items))],
    )
    return items, units


class _Task:
    name = "toy"
    classes = ["0", "1"]


def _config(**cv) -> RunConfig:
    return RunConfig(task="toy", cv=CVConfig(repeats=4, folds=3, **cv))


def test_sites_come_from_barcodes_and_site_plans_keep_sites_whole() -> None:
    items, units = _cohort()
    sites = unit_sites(units, items)
    assert sites[0] == "S0" and set(sites) == {"S0", "S1", "S2", "S3"}
    groups = plan_groups("site", units, sites)
    plan = make_plan(units.ids, units.strata, groups, 6, 3, seed=0, sites=sites, grouped_by="site")
    s = np.array(sites)
    for r in range(6):
        assert all(len(set(plan.assignments[r][s == site])) == 1 for site in set(sites))


def test_site_grouping_without_sites_is_a_one_line_error() -> None:
    items, units = _cohort()
    items[4] = Item("plain.png", Path("."), label="1", patient="P9")
    units.groups[4] = "P9"
    with pytest.raises(DataError, match=r"--group-by site: 1 of 60 units have no tissue-source"):
        plan_groups("site", units, unit_sites(units, items))


def test_store_finds_a_drawn_plan_by_its_recipe_and_site_plans_differ(tmp_path: Path) -> None:
    items, units = _cohort()
    dataset = Dataset("toy", "tiles", items)
    with ResultsStore(tmp_path / "r.sqlite") as store:
        by_patient = get_or_make_plan(store, _Task(), units, _config(), dataset, items)
        again = get_or_make_plan(store, _Task(), units, _config(), dataset, items)
        by_site = get_or_make_plan(store, _Task(), units, _config(group_by="site"), dataset, items)
        stored = store.load_plan(by_site.plan_id)
    assert again.plan_id == by_patient.plan_id
    assert by_site.plan_id != by_patient.plan_id
    assert stored is not None and stored.grouped_by == "site" and stored.sites is not None
    assert stored.patients == tuple(units.groups)


def test_export_then_import_keeps_the_plan_id(tmp_path: Path) -> None:
    items, units = _cohort()
    dataset = Dataset("toy", "tiles", items)
    with ResultsStore(tmp_path / "r.sqlite") as store:
        plan = get_or_make_plan(store, _Task(), units, _config(group_by="site"), dataset, items)
    path = tmp_path / "plan.csv"
    assert write_plan_csv(plan, path) == 4 * 60
    lines = path.read_text().splitlines()
    assert lines[0] == "unit,patient,repeat,fold,site"
    assert lines[1].startswith("TCGA-S0-0000-t0.png,TCGA-S0-0000,0,")
    # A fresh store (another machine): the file alone gives the same id.
    sites = unit_sites(units, items)
    imported = read_plan_csv(path, units.ids, units.groups, sites, "site")
    assert imported.plan_id == plan.plan_id and imported.algorithm == "imported"
    assert np.array_equal(imported.assignments, plan.assignments)
    # Rows in another order: still the same plan.
    body = lines[1:]
    np.random.default_rng(0).shuffle(body)
    path.write_text("\n".join([lines[0], *body]) + "\n")
    reordered = read_plan_csv(path, units.ids, units.groups, sites, "site")
    assert reordered.plan_id == plan.plan_id
    # Through the runner with --plan: the stored original is reused, so runs are paired.
    with ResultsStore(tmp_path / "r.sqlite") as store:
        used = get_or_make_plan(store, _Task(), units, _config(plan=path), dataset, items)
    assert used.plan_id == plan.plan_id and used.algorithm != "imported"


def _write(path: Path, rows: list[str], header: str = "unit,patient,repeat,fold") -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


GOOD = ["a,P1,0,0", "b,P1,0,0", "c,P2,0,1", "d,P3,0,1", "a,P1,1,1", "b,P1,1,1", "c,P2,1,0",
        "d,P3,1,0"]  # fmt: skip


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (GOOD[:-1], "unit 'd' has no fold in repeat 1"),
        (GOOD[:1] + ["b,P1,0,1"] + GOOD[2:], "line 3: patient of the data 'P1' is in folds 0"),
        (GOOD + ["e,P9,0,0"], "line 10: unit 'e' is not a unit of this run"),
        (GOOD + ["a,P1,0,0"], "line 10: unit 'a' appears twice in repeat 0"),
        (
            GOOD[:4] + ["a,P1,1,2", "b,P1,1,2", "c,P2,1,2", "d,P3,1,2"],
            "fold 2 of repeat 0 is empty",
        ),
        (["a,P1,x,0"] + GOOD[1:], "line 2: repeat must be a whole number"),
        (["a,P1,0,-1"] + GOOD[1:], "line 2: fold must be a whole number"),
        (GOOD[:4] + ["a,P7,1,1"] + GOOD[5:], "line 6: unit 'a' has patient 'P7' here"),
    ],
)
def test_bad_plan_files_name_the_file_and_first_bad_row(
    tmp_path: Path, rows: list[str], message: str
) -> None:
    path = _write(tmp_path / "plan.csv", rows)
    with pytest.raises(DataError, match="plan.csv") as info:
        read_plan_csv(path, ["a", "b", "c", "d"], ["P1", "P1", "P2", "P3"], None, "patient")
    assert message in str(info.value) and "\n" not in str(info.value)


def test_plan_file_patient_column_is_checked_too(tmp_path: Path) -> None:
    # The data knows no patients (each unit its own); the file says a and c share one.
    rows = ["a,P1,0,0", "b,P2,0,0", "c,P1,0,1", "d,P3,0,1"]
    path = _write(tmp_path / "plan.csv", rows)
    with pytest.raises(DataError, match="line 4: patient in the file 'P1' is in folds 0"):
        read_plan_csv(path, ["a", "b", "c", "d"], ["a", "b", "c", "d"], None, "patient")


def test_plan_file_without_columns_or_missing(tmp_path: Path) -> None:
    path = _write(tmp_path / "plan.csv", ["a,0,0"], header="unit,repeat,fold")
    with pytest.raises(DataError, match="needs the columns unit,patient,repeat,fold"):
        read_plan_csv(path, ["a"], ["a"], None, "patient")
    with pytest.raises(DataError, match="plan file not found"):
        read_plan_csv(tmp_path / "nope.csv", ["a"], ["a"], None, "patient")


def test_legacy_group_by_patient_maps_to_group_by() -> None:
    assert CVConfig.model_validate({"group_by_patient": False}).group_by == "none"
    assert CVConfig.model_validate({"group_by_patient": True}).group_by == "patient"
    with pytest.raises(ValueError, match="contradicts group_by = 'site'"):
        CVConfig.model_validate({"group_by_patient": True, "group_by": "site"})
