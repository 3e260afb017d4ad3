"""Split plans: repeated, stratified, grouped K-fold, shared by every extractor.

histobench draws its own folds instead of using a library splitter, so a plan does not change
when scikit-learn does (its ``StratifiedGroupKFold`` also orders groups deterministically, so
its "repeats" put the same patients together again and again). Each repeat is an independent
draw from a PCG64 bit generator seeded with ``(seed, repeat)``; only the generator's raw 64-bit
output is used (NumPy guarantees that stream across versions, not its distribution methods).

One repeat, grouped: the groups (patients or sites) are visited in a uniformly random order and
each goes to the fold whose class counts it brings closest to the targets (total / K per class,
plus the fold size), ties broken at random; then groups are moved, in random order, while a move
lowers the squared distance to the targets. Ungrouped units (one per group) are dealt like
StratifiedKFold: shuffled within their class, classes laid end to end, folds dealt round-robin
from a random fold order, so every class count and every fold size is within one of its target.

A plan is its folds: its id digests the units (in order) and their fold in every repeat, so a
plan drawn here and the same plan exported to CSV and imported again are one plan, and runs on
them are paired. The *recipe* (inputs, seed and algorithm version) finds a stored plan again.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from histobench.plugins.errors import DataError
from histobench.plugins.specs import PLAN_ALGORITHM, SplitPlan, digest

# The size column's weight against one class column in the balance objective.
_SIZE_WEIGHT = 1.0
_MAX_IMPROVEMENT_PASSES = 20
# A pass that lowers the objective by less than this fraction is the last one.
_MIN_PASS_GAIN = 0.01
# Swaps try every other group up to this many groups, a random sample of this size beyond.
_MAX_SWAP_PARTNERS = 64


class _Random:
    """Uniform numbers from PCG64's raw output only (stable across NumPy versions)."""

    def __init__(self, seed: int, repeat: int) -> None:
        self._bits = np.random.PCG64(np.random.SeedSequence([seed, repeat]))

    def uniform(self, n: int) -> np.ndarray:
        raw = np.asarray(self._bits.random_raw(n), dtype=np.uint64)
        return (raw >> np.uint64(11)).astype(np.float64) * (1.0 / 2**53)

    def permutation(self, n: int) -> np.ndarray:
        return np.argsort(self.uniform(n), kind="stable")


def plan_recipe(
    unit_ids: Sequence[str],
    strata: np.ndarray,
    groups: Sequence[str],
    repeats: int,
    folds: int,
    seed: int,
) -> str:
    """Everything that determines a drawn plan, including the algorithm version."""
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


def plan_content_id(unit_ids: Sequence[str], assignments: np.ndarray) -> str:
    """The plan's identity: the units, in order, and each one's fold in every repeat.

    Order counts because tasks and stored predictions address units by position: two runs
    with one plan id line up unit by unit.
    """
    return digest(
        ["split-plan", list(unit_ids), np.asarray(assignments).astype(int).tolist()], length=16
    )


def make_plan(
    unit_ids: Sequence[str],
    strata: np.ndarray,
    groups: Sequence[str],
    repeats: int,
    folds: int,
    seed: int,
    class_names: Sequence[str] | None = None,
    patients: Sequence[str] | None = None,
    sites: Sequence[str | None] | None = None,
    grouped_by: str = "patient",
) -> SplitPlan:
    """Draw a repeated K-fold plan. Stratified on ``strata``; units of one group stay together.

    ``patients`` and ``sites`` (one per unit) are kept with the plan for export; ``grouped_by``
    says what ``groups`` holds ("patient", "site" or "none").
    """
    strata = np.asarray(strata)
    n = len(unit_ids)
    if len(set(unit_ids)) != n:
        raise DataError("unit ids are not unique; every tile or patient needs its own id")
    if len(strata) != n or len(groups) != n:
        raise ValueError("unit_ids, strata and groups must have the same length")
    group_codes = np.unique(np.asarray(groups, dtype=str), return_inverse=True)[1].ravel()
    n_groups = int(group_codes.max()) + 1 if n else 0
    if n_groups < folds:
        what = {"site": "sites", "none": "items"}.get(grouped_by, "patients/items")
        raise DataError(f"only {n_groups} {what} for {folds} folds; lower --folds or add data")
    _check_strata(strata, group_codes, folds, class_names)
    class_codes = np.unique(strata, return_inverse=True)[1].ravel()
    assignments = np.empty((repeats, n), dtype=np.int16)
    for r in range(repeats):
        rng = _Random(seed, r)
        if n_groups == n:
            assignments[r] = _deal_stratified(class_codes, folds, rng)
        else:
            assignments[r] = _draw_grouped(class_codes, group_codes, folds, rng)
    return SplitPlan(
        plan_content_id(unit_ids, assignments),
        tuple(unit_ids),
        assignments,
        repeats,
        folds,
        seed,
        patients=tuple(patients) if patients is not None else tuple(groups),
        sites=tuple(sites) if sites is not None else None,
        grouped_by=grouped_by,
        recipe=plan_recipe(unit_ids, strata, groups, repeats, folds, seed),
    )


def _deal_stratified(class_codes: np.ndarray, folds: int, rng: _Random) -> np.ndarray:
    """Units shuffled within their class, classes end to end, dealt round-robin to folds."""
    n = len(class_codes)
    order = np.lexsort((rng.uniform(n), rng.uniform(int(class_codes.max()) + 1)[class_codes]))
    fold_order = rng.permutation(folds)
    out = np.empty(n, dtype=np.int16)
    out[order] = fold_order[np.arange(n) % folds]
    return out


def _draw_grouped(
    class_codes: np.ndarray, group_codes: np.ndarray, folds: int, rng: _Random
) -> np.ndarray:
    n_groups = int(group_codes.max()) + 1
    n_classes = int(class_codes.max()) + 1
    # Per group: its count of each class, then its size (weighted), as one row.
    counts = np.zeros((n_groups, n_classes + 1))
    np.add.at(counts, (group_codes, class_codes), 1.0)
    counts[:, -1] = counts[:, :-1].sum(axis=1) * _SIZE_WEIGHT
    target = counts.sum(axis=0) / folds
    deviation = np.tile(-target, (folds, 1))  # fold totals minus targets
    fold_of = np.empty(n_groups, dtype=np.int64)
    for g in rng.permutation(n_groups):
        # Adding row a to fold k changes the squared deviation by 2 a·d_k + |a|²: pick the
        # smallest a·d_k; the jitter (< 0.5, below any real difference) breaks ties at random.
        cost = deviation @ counts[g] + 0.49 * rng.uniform(folds)
        k = int(np.argmin(cost))
        fold_of[g] = k
        deviation[k] += counts[g]
    _improve(counts, deviation, fold_of, rng)
    _fill_empty_folds(counts, fold_of, folds, rng)
    return fold_of[group_codes].astype(np.int16)


def _improve(counts: np.ndarray, deviation: np.ndarray, fold_of: np.ndarray, rng: _Random) -> None:
    """Move or swap groups, in random order, while that lowers the deviation (``_cost``).

    Greedy placement in a random order can leave a large group last; single moves then stall
    where a swap of two groups between folds still helps, so both are tried.
    """
    folds = deviation.shape[0]
    n_groups = len(fold_of)
    good_enough = _best_possible(counts, folds) + 1.0
    previous = float(_cost(deviation).sum())
    for _ in range(_MAX_IMPROVEMENT_PASSES):
        if np.all(np.abs(deviation) <= good_enough + 1e-9):
            return  # within one item of the best the groups allow: stay as random as that
        changed = False
        for g in rng.permutation(n_groups):
            a, here = counts[g], int(fold_of[g])
            d_here = deviation[here]
            # Moving a from fold f (here) to h: the two folds' rows change, nothing else.
            move = _cost(deviation + a) - _cost(deviation) + _cost(d_here - a) - _cost(d_here)
            move[here] = 0.0
            move += 1e-9 * rng.uniform(folds)  # random among equal improvements
            k = int(np.argmin(move))
            if move[k] < -1e-6:
                _shift(deviation, fold_of, counts, g, k)
                changed = True
                continue
            partners = _swap_partners(n_groups, rng)
            # Swapping a (fold f) with b (fold h): d_f − a + b and d_h + a − b.
            diff = a - counts[partners]
            d_there = deviation[fold_of[partners]]
            gain = _cost(d_here - diff) - _cost(d_here) + _cost(d_there + diff) - _cost(d_there)
            gain[fold_of[partners] == here] = 0.0
            gain += 1e-9 * rng.uniform(len(partners))
            j = int(np.argmin(gain))
            if gain[j] < -1e-6:
                h = int(partners[j])
                there = int(fold_of[h])
                _shift(deviation, fold_of, counts, h, here)
                _shift(deviation, fold_of, counts, g, there)
                changed = True
        current = float(_cost(deviation).sum())
        # Many small groups: later passes polish by fractions of an item; stop there.
        if not changed or current > previous * (1.0 - _MIN_PASS_GAIN):
            return
        previous = current


def _best_possible(counts: np.ndarray, folds: int) -> np.ndarray:
    """A lower bound on each column's worst deviation: integer counts cannot meet a fractional
    target, and a fold holding the largest group holds at least that group."""
    target = counts.sum(axis=0) / folds
    rounding = np.maximum(np.ceil(target) - target, target - np.floor(target))
    return np.maximum(rounding, counts.max(axis=0) - target)


def _cost(rows: np.ndarray) -> np.ndarray:
    """Distance of fold rows from their targets: fourth powers, so the worst class dominates
    (squares let one class sit two items off while the others are exact)."""
    return np.sum(rows**4, axis=-1)


def _shift(deviation: np.ndarray, fold_of: np.ndarray, counts: np.ndarray, g: int, k: int) -> None:
    deviation[fold_of[g]] -= counts[g]
    deviation[k] += counts[g]
    fold_of[g] = k


def _swap_partners(n_groups: int, rng: _Random) -> np.ndarray:
    """All groups, or a random sample of them where trying every pair would be slow."""
    if n_groups <= _MAX_SWAP_PARTNERS:
        return np.arange(n_groups)
    return (rng.uniform(_MAX_SWAP_PARTNERS) * n_groups).astype(np.int64)


def _fill_empty_folds(counts: np.ndarray, fold_of: np.ndarray, folds: int, rng: _Random) -> None:
    """Balancing never leaves a fold empty in practice; if it does, give it a random group."""
    for k in range(folds):
        if np.any(fold_of == k):
            continue
        sizes = np.bincount(fold_of, minlength=folds)
        donors = np.flatnonzero(sizes[fold_of] > 1)
        fold_of[donors[int(rng.uniform(1)[0] * len(donors))]] = k


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
