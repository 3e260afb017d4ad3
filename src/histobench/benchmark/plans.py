"""Split plans for a run: what groups its units (patient or site), and plans to and from CSV.

A plan CSV has one row per unit per repeat: ``unit,patient,repeat,fold`` and ``site`` where
sites are known. A plan read back gets the same id as the plan it was exported from (a plan's
id is its folds), so runs on the two are paired.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from histobench.benchmark.splits import plan_content_id
from histobench.plugins.errors import DataError
from histobench.plugins.labels import site_from_barcode
from histobench.plugins.specs import Item, SplitPlan, Units

PLAN_COLUMNS = ("unit", "patient", "repeat", "fold")


def unit_sites(units: Units, items: Sequence[Item]) -> list[str | None]:
    """Each unit's TCGA tissue-source site: its items' ``site`` (a patients map), else the
    site in its patient's or its items' barcodes; None where nothing names one."""
    sites: list[str | None] = []
    for unit, group, members in zip(units.ids, units.groups, units.members, strict=True):
        found = set()
        for m in members:
            item = items[int(m)]
            site = item.meta.get("site") or site_from_barcode(item.patient or item.item_id)
            if site:
                found.add(str(site))
        if not found and site_from_barcode(group):
            found.add(str(site_from_barcode(group)))
        if len(found) > 1:
            raise DataError(f"unit {unit} has items from several sites: {', '.join(sorted(found))}")
        sites.append(found.pop() if found else None)
    return sites


def plan_groups(group_by: str, units: Units, sites: Sequence[str | None]) -> list[str]:
    """What stays in one fold: the task's patient groups, each unit alone, or each site."""
    if group_by == "none":
        return list(units.ids)
    if group_by == "patient":
        return list(units.groups)
    missing = [u for u, s in zip(units.ids, sites, strict=True) if s is None]
    if missing:
        raise DataError(
            f"--group-by site: {len(missing)} of {len(units.ids)} units have no tissue-source "
            f"site (no TCGA barcode, no site column in the patients map), e.g. {missing[0]}"
        )
    site_of_patient: dict[str, str] = {}
    for patient, site in zip(units.groups, sites, strict=True):
        assert site is not None
        if site_of_patient.setdefault(patient, site) != site:
            raise DataError(
                f"--group-by site: patient {patient} is in sites {site_of_patient[patient]} "
                f"and {site}"
            )
    return [str(s) for s in sites]


def write_plan_csv(plan: SplitPlan, path: Path) -> int:
    """One row per unit per repeat; returns the number of rows written."""
    if plan.patients is None:
        raise DataError(
            f"plan {plan.plan_id} was stored before plans kept their patients; run the "
            "benchmark again to store it with them, then export"
        )
    with_sites = plan.sites is not None and any(s for s in plan.sites)
    path = Path(path).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow([*PLAN_COLUMNS, *(["site"] if with_sites else [])])
        for r in range(plan.repeats):
            for i, unit in enumerate(plan.unit_ids):
                row = [unit, plan.patients[i], r, int(plan.assignments[r, i])]
                if with_sites:
                    assert plan.sites is not None
                    row.append(plan.sites[i] or "")
                writer.writerow(row)
    tmp.replace(path)  # a reader never sees half a plan
    return plan.repeats * plan.n_units


class _PlanChecker:
    """Reads plan rows in file order; the first bad row raises, named by its line."""

    def __init__(self, path: Path, unit_ids: Sequence[str], groups: dict[str, Sequence[str]]):
        self.path = path
        self.index = {u: i for i, u in enumerate(unit_ids)}
        self.groups = groups  # e.g. {"patient": per-unit patients of the data, "site": …}
        self.folds: dict[tuple[int, int], int] = {}  # (repeat, unit) → fold
        self.lines: dict[tuple[int, int], int] = {}
        self.patient_of: dict[int, tuple[str, int]] = {}
        self.seen: dict[tuple[str, str, int], tuple[int, int]] = {}  # (kind, group, r) → fold

    def fail(self, line: int, message: str) -> DataError:
        return DataError(f"{self.path}: line {line}: {message}")

    def row(self, line: int, row: dict[str, str]) -> None:
        unit = row["unit"]
        if unit not in self.index:
            raise self.fail(line, f"unit '{unit}' is not a unit of this run's data set and task")
        r, k = self._integer(line, row, "repeat"), self._integer(line, row, "fold")
        i = self.index[unit]
        if (r, i) in self.folds:
            raise self.fail(line, f"unit '{unit}' appears twice in repeat {r}")
        self.folds[(r, i)] = k
        self.lines[(r, i)] = line
        patient = row["patient"] or unit
        first = self.patient_of.setdefault(i, (patient, line))
        if first[0] != patient:
            raise self.fail(
                line, f"unit '{unit}' has patient '{patient}' here, '{first[0]}' on line {first[1]}"
            )
        together = {f"{kind} of the data": values[i] for kind, values in self.groups.items()}
        if self.groups:  # an ungrouped plan (group_by none) may split patients on purpose
            together["patient in the file"] = patient
        if row.get("site") and "site" in self.groups:
            together["site in the file"] = row["site"]
        for kind, group in together.items():
            fold, where = self.seen.setdefault((kind, group, r), (k, line))
            if fold != k:
                raise self.fail(
                    line,
                    f"{kind} '{group}' is in folds {fold} (line {where}) and {k} of repeat {r}",
                )

    def _integer(self, line: int, row: dict[str, str], column: str) -> int:
        try:
            value = int(row[column])
        except ValueError:
            value = -1
        if value < 0:
            raise self.fail(line, f"{column} must be a whole number ≥ 0 (got '{row[column]}')")
        return value

    def assignments(self, n_units: int, unit_ids: Sequence[str]) -> np.ndarray:
        if not self.folds:
            raise DataError(f"{self.path}: the plan has no rows")
        repeats = max(r for r, _ in self.folds) + 1
        folds = max(self.folds.values()) + 1
        out = np.full((repeats, n_units), -1, dtype=np.int16)
        for (r, i), k in self.folds.items():
            out[r, i] = k
        for r in range(repeats):
            missing = np.flatnonzero(out[r] < 0)
            if len(missing):
                raise DataError(
                    f"{self.path}: unit '{unit_ids[missing[0]]}' has no fold in repeat {r} "
                    f"({len(missing)} units unassigned); every unit needs a fold in every repeat"
                )
            empty = sorted(set(range(folds)) - set(out[r].tolist()))
            if empty:
                raise DataError(
                    f"{self.path}: fold {empty[0]} of repeat {r} is empty; folds must be "
                    f"0..{folds - 1}, each holding units in every repeat"
                )
        if folds < 2:
            raise DataError(f"{self.path}: a plan needs at least two folds")
        return out


def read_plan_csv(
    path: Path,
    unit_ids: Sequence[str],
    patients: Sequence[str],
    sites: Sequence[str | None] | None,
    group_by: str,
) -> SplitPlan:
    """A user's split for this run's units; every unit in every repeat, no patient (nor,
    with ``group_by == "site"``, site) in two folds of a repeat. Errors name the line."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataError(f"{path}: plan file not found")
    groups: dict[str, Sequence[str]] = {}
    if group_by in ("patient", "site"):
        groups["patient"] = patients
    if group_by == "site" and sites is not None:
        groups["site"] = [s or f"unit:{u}" for u, s in zip(unit_ids, sites, strict=True)]
    checker = _PlanChecker(path, unit_ids, groups)
    file_sites: dict[int, str] = {}
    try:
        with path.open(newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            columns = [c.strip() for c in reader.fieldnames or []]
            if not set(PLAN_COLUMNS) <= set(columns):
                raise DataError(
                    f"{path}: a plan needs the columns {','.join(PLAN_COLUMNS)}[,site] "
                    f"(found: {','.join(columns) or 'nothing'})"
                )
            for line, raw in enumerate(reader, start=2):
                row = {str(k).strip(): (v or "").strip() for k, v in raw.items() if k}
                checker.row(line, row)
                if row.get("site"):
                    file_sites[checker.index[row["unit"]]] = row["site"]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: not a readable CSV file ({exc})") from exc
    assignments = checker.assignments(len(unit_ids), unit_ids)
    plan_patients = tuple(checker.patient_of[i][0] for i in range(len(unit_ids)))
    plan_sites = (
        tuple(file_sites.get(i) or (sites[i] if sites else None) for i in range(len(unit_ids)))
        if file_sites or (sites is not None and any(sites))
        else None
    )
    return SplitPlan(
        plan_content_id(unit_ids, assignments),
        tuple(unit_ids),
        assignments,
        repeats=assignments.shape[0],
        folds=int(assignments.max()) + 1,
        seed=-1,
        algorithm="imported",
        patients=plan_patients,
        sites=plan_sites,
        grouped_by=group_by,
    )
