"""Split plans: repeated, stratified, patient-grouped K-fold, shared by every extractor.

A plan is identified by a hash of everything that determines it (unit ids, strata, groups,
repeats, folds, seed, algorithm version). It is stored once and reused, so two extractors run
on the same data, task and seed are scored on identical folds: every comparison is paired.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

from histobench.plugins.errors import DataError
from histobench.plugins.specs import PLAN_ALGORITHM, SplitPlan, digest


def plan_identity(
    unit_ids: Sequence[str],
    strata: np.ndarray,
    groups: Sequence[str],
    repeats: int,
    folds: int,
    seed: int,
) -> str:
    return digest(
        [
            PLAN_ALGORITHM,
            list(unit_ids),
            np.asarray(strata).tolist(),
            list(groups),
            repeats,
            folds,
            seed,
        ],
        length=16,
    )


def make_plan(
    unit_ids: Sequence[str],
    strata: np.ndarray,
    groups: Sequence[str],
    repeats: int,
    folds: int,
    seed: int,
    class_names: Sequence[str] | None = None,
) -> SplitPlan:
    """Draw a repeated K-fold plan. Stratified on ``strata``; units of one group stay together."""
    strata = np.asarray(strata)
    n = len(unit_ids)
    if len(set(unit_ids)) != n:
        raise DataError("unit ids are not unique; every tile or patient needs its own id")
    if len(strata) != n or len(groups) != n:
        raise ValueError("unit_ids, strata and groups must have the same length")
    group_codes = np.unique(np.asarray(groups), return_inverse=True)[1]
    n_groups = int(group_codes.max()) + 1 if n else 0
    if n_groups < folds:
        raise DataError(
            f"only {n_groups} patients/items for {folds} folds; lower --folds or add data"
        )
    _check_strata(strata, group_codes, folds, class_names)
    grouped = n_groups < n
    assignments = np.empty((repeats, n), dtype=np.int16)
    for r in range(repeats):
        # One seed per repeat, derived from the plan seed, so repeats are independent draws.
        rs = int(np.random.SeedSequence([seed, r]).generate_state(1)[0])
        splitter = (
            StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=rs)
            if grouped
            else StratifiedKFold(n_splits=folds, shuffle=True, random_state=rs)
        )
        split_iter = (
            splitter.split(np.zeros(n), strata, group_codes)
            if grouped
            else splitter.split(np.zeros(n), strata)
        )
        for k, (_, test) in enumerate(split_iter):
            assignments[r, test] = k
    plan_id = plan_identity(unit_ids, strata, groups, repeats, folds, seed)
    return SplitPlan(plan_id, tuple(unit_ids), assignments, repeats, folds, seed)


def _check_strata(
    strata: np.ndarray, group_codes: np.ndarray, folds: int, class_names: Sequence[str] | None
) -> None:
    if len(np.unique(strata)) < 2:
        return  # regression or a single stratum: plain (grouped) K-fold
    for value in np.unique(strata):
        n_groups = len(np.unique(group_codes[strata == value]))
        if n_groups < folds:
            name = class_names[int(value)] if class_names is not None else str(value)
            what = "patients" if n_groups < int((strata == value).sum()) else "items"
            raise DataError(
                f"class '{name}' has {n_groups} {what}, fewer than the {folds} folds; "
                "lower --folds or add data for that class"
            )
