"""Training data for the recipe: scan, identity, held-out split, and the image loader.

Every tile is decoded once before training (in loader workers) so unreadable tiles are
skipped and recorded up front; a bad tile found mid-epoch would silently change batch
composition and break resumability.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset

from histobench.benchmark.images import BadImage, open_rgb
from histobench.plugins.errors import ConfigError, DataError
from histobench.plugins.labels import patient_from_barcode
from histobench.plugins.specs import Dataset, Item, SkippedItem


@dataclass
class TrainingData:
    root: Path
    digest: str  # sha256 of the sorted file list with sizes and content fingerprints
    classes: list[str]
    items: list[Item]  # usable tiles, sorted by item id
    labels: np.ndarray  # class index per usable tile
    train: np.ndarray  # indices into items
    val: np.ndarray
    skipped: list[SkippedItem] = field(default_factory=list)  # everything left out, with why
    unreadable: list[SkippedItem] = field(default_factory=list)  # the decode failures among them
    grouped: bool = False  # whether the split kept patients together


def data_digest(items: Sequence[Item]) -> str:
    rows = sorted((it.item_id, it.path.stat().st_size, it.fingerprint) for it in items)
    return hashlib.sha256(json.dumps(rows, separators=(",", ":")).encode()).hexdigest()


def patient_of(item: Item) -> str | None:
    """The item's patient if the data set names one, else a TCGA barcode in its file name."""
    return item.patient or patient_from_barcode(item.path.name)


class TileImages(TorchDataset):
    """Decodes tiles; a bad tile yields ``None`` and the reason instead of raising."""

    def __init__(self, paths: Sequence[Path], labels: Sequence[int], preprocess: Callable) -> None:
        self.paths = [str(p) for p in paths]
        self.labels = list(labels)
        self.preprocess = preprocess

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[int, torch.Tensor | None, int, str]:
        try:
            return i, self.preprocess(open_rgb(Path(self.paths[i]))), self.labels[i], ""
        except BadImage as exc:
            return i, None, self.labels[i], str(exc)


def collate(batch: list) -> tuple[list[int], torch.Tensor | None, torch.Tensor, list]:
    good = [(i, t, y) for i, t, y, _ in batch if t is not None]
    bad = [(i, reason) for i, t, _, reason in batch if t is None]
    images = torch.stack([t for _, t, _ in good]) if good else None
    labels = torch.tensor([y for _, _, y in good], dtype=torch.long)
    return [i for i, _, _ in good], images, labels, bad


def make_loader(
    dataset: TileImages,
    order: Sequence[int] | np.ndarray | None,
    batch_size: int,
    workers: int,
    pin: bool,
) -> DataLoader:
    # An explicit index list as the sampler: the data order is decided by the trainer's seeded
    # permutation, never by loader state, so a resumed epoch sees the same batches.
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=[int(i) for i in order] if order is not None else None,
        num_workers=workers,
        collate_fn=collate,
        pin_memory=pin,
        prefetch_factor=4 if workers else None,
        persistent_workers=False,
        # Its own generator: creating a loader must not consume the global RNG, whose state
        # (dropout in some timm models) is checkpointed and must match across a resume.
        generator=torch.Generator(),
    )


def scan_bad_tiles(items: Sequence[Item], workers: int) -> list[SkippedItem]:
    """Decode every tile once; the ones that cannot serve as RGB tiles are reported."""
    # Decoding only: a tiny preprocess keeps the scan cheap.
    ds = TileImages([it.path for it in items], [0] * len(items), _decode_only)
    bad: list[SkippedItem] = []
    for _, _, _, rejects in make_loader(ds, None, 64, workers, pin=False):
        bad.extend(SkippedItem(items[i].item_id, reason) for i, reason in rejects)
    return bad


def _decode_only(image: object) -> torch.Tensor:
    return torch.zeros(1)


def tile_dataset(root: Path) -> Dataset:
    """The labelled tiles under ``root``, read by whichever data set plugin recognises them."""
    from histobench.plugins.manager import get_plugins

    if not root.is_dir():
        raise DataError(f"{root}: training data folder not found")
    for entry in get_plugins().datasets.entries():
        spec = entry.spec
        if spec.detect is not None and spec.detect(root):
            dataset = spec.factory(str(root), spec.options_model())
            if dataset.kind == "tiles":
                return dataset
    raise DataError(f"{root}: not a folder of labelled tiles (<root>/<CLASS>/<tile>)")


def load_training_data(
    root: Path,
    val_fraction: float,
    seed: int,
    expected_classes: Sequence[str] | None,
    workers: int,
    known_bad: dict[str, str] | None = None,
) -> TrainingData:
    """Scan the folder, drop bad tiles, check classes, split train/val."""
    dataset = tile_dataset(root)
    items = sorted(dataset.items, key=lambda it: it.item_id)
    digest = data_digest(items)
    skipped = list(dataset.skipped)
    if known_bad is None:
        bad = scan_bad_tiles(items, workers)
    else:  # a resumed run reuses its scan (same digest, so the same files)
        bad = [SkippedItem(k, v) for k, v in known_bad.items()]
    bad_ids = {b.item_id for b in bad}
    skipped += bad
    items = [it for it in items if it.item_id not in bad_ids]
    classes = sorted({it.label for it in items if it.label is not None})
    empty = [c for c in dataset.classes if c not in classes]
    if empty:
        raise DataError(f"{root}: class '{empty[0]}' has no readable tiles")
    if len(classes) < 2:
        raise DataError(f"{root}: only one class with readable tiles ('{classes[0]}'); need two")
    if expected_classes is not None and sorted(expected_classes) != classes:
        missing = sorted(set(expected_classes) - set(classes))
        extra = sorted(set(classes) - set(expected_classes))
        raise ConfigError(
            f"{root}: class folders do not match the expected classes "
            f"(missing: {', '.join(missing) or '-'}; unexpected: {', '.join(extra) or '-'})"
        )
    index = {c: k for k, c in enumerate(classes)}
    labels = np.array([index[str(it.label)] for it in items], dtype=np.int64)
    groups = [patient_of(it) or it.item_id for it in items]
    train, val, grouped = split_train_val(labels, groups, val_fraction, seed, classes, root)
    return TrainingData(root, digest, classes, items, labels, train, val, skipped, bad, grouped)


def split_train_val(
    labels: np.ndarray,
    groups: Sequence[str],
    val_fraction: float,
    seed: int,
    classes: Sequence[str],
    root: Path,
) -> tuple[np.ndarray, np.ndarray, bool]:
    n = len(labels)
    everything = np.arange(n)
    if val_fraction == 0:
        return everything, np.empty(0, dtype=np.int64), False
    counts = np.bincount(labels, minlength=len(classes))
    if counts.min() < 2:
        c = classes[int(counts.argmin())]
        raise ConfigError(
            f"{root}: class '{c}' has {counts.min()} usable tile(s); a validation split needs "
            "at least 2 per class (use --val-fraction 0)"
        )
    group_codes = np.unique(np.asarray(groups), return_inverse=True)[1]
    grouped = int(group_codes.max()) + 1 < n
    if grouped:
        from sklearn.model_selection import StratifiedGroupKFold

        n_splits = max(2, round(1 / val_fraction))
        splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        try:
            _, val = next(splitter.split(np.zeros(n), labels, group_codes))
        except ValueError as exc:
            raise ConfigError(f"{root}: cannot split patients into train/val ({exc})") from exc
        return np.setdiff1d(everything, val), np.sort(val), True
    # Ungrouped: per class, a seeded share (at least one tile, never all of them).
    rng = np.random.default_rng([seed, 7])
    val_parts = []
    for code in range(len(classes)):
        members = np.flatnonzero(labels == code)
        k = min(len(members) - 1, max(1, round(val_fraction * len(members))))
        val_parts.append(rng.permutation(members)[:k])
    val = np.sort(np.concatenate(val_parts))
    return np.setdiff1d(everything, val), val, False
