"""The contracts between the core and its plugins.

A plugin returns *specs* from its hooks (see ``histobench.plugins.hookspecs``). A spec names a
component, carries the pydantic model that validates its options, and a factory that builds it.
The core depends only on these abstractions, never on a concrete extractor, task or data set.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:  # torch and PIL are heavy; only extractors need them at run time
    import torch
    from PIL import Image

    from histobench.plugins.labels import PatientLabels


class PluginOptions(BaseModel):
    """Base for every plugin's options model: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


class NoOptions(PluginOptions):
    """For plugins that take no options."""


# A spec is generic over its options model, so its factory receives that model's type.
OptionsT = TypeVar("OptionsT", bound=PluginOptions)


def digest(obj: Any, length: int = 16) -> str:
    """A stable short hash of JSON-serialisable data (sorted keys)."""
    text = json.dumps(obj, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def file_identity(path: Path) -> str:
    """A file by its content (``sha256:…``), so the same file under another path or name is
    the same input; ``missing:<name>`` when it does not exist."""
    path = Path(path)
    if not path.is_file():
        return f"missing:{path.name}"
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return f"sha256:{h.hexdigest()}"


# --------------------------------------------------------------------------------------------
# Data sets
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One unit of input: a tile image, a whole slide, or a precomputed feature file."""

    item_id: str  # stable and unique within the data set, e.g. "ADI/ADI-AAQEFMRI.tif"
    path: Path
    label: str | None = None  # class name for tile-classification data sets
    patient: str | None = None  # items sharing a patient are kept in the same fold
    fingerprint: str = ""  # content identity used in feature-cache keys
    meta: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SkippedItem:
    """An item of a good data set that could not be used; recorded with the run and reported."""

    item_id: str
    reason: str


@dataclass
class ExtractionResult:
    """Features of a data set's items, as an embedder returns them."""

    features: np.ndarray  # (n_ok, D) float32, in the order of ``ok``
    ok: list[int]  # indices into the input items that produced features
    skipped: list[SkippedItem] = field(default_factory=list)
    cached: int = 0
    computed: int = 0
    seconds: float = 0.0
    corrupt_cache_files: int = 0
    # Tiles behind each row (slides pool many tiles); None means one tile per row.
    tile_counts: np.ndarray | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def tiles_per_second(self) -> float:
        return self.computed / self.seconds if self.seconds > 0 else 0.0


class Embedder(Protocol):
    """How a data set turns its items into features (slides, precomputed HDF5 files)."""

    def __call__(
        self, extractor: Extractor | None, items: Sequence[Item], runtime: Runtime
    ) -> ExtractionResult: ...


@dataclass
class Dataset:
    """A resolved data set: its usable items plus what was skipped while scanning it."""

    name: str
    kind: str  # "tiles", "slides" or "cohort": decides how items are turned into features
    items: list[Item]
    root: Path | None = None
    classes: list[str] = field(default_factory=list)
    skipped: list[SkippedItem] = field(default_factory=list)
    # Patient-level labels (mutations, expression) for the tasks that need them.
    labels: PatientLabels | None = None
    # How items become features when they are not plain tile images (slides, precomputed
    # HDF5). None: the engine's tile pipeline embeds the items.
    embed: Embedder | None = None
    # Recorded with the run only (e.g. the cohort file and its parsed sections).
    extra: dict[str, Any] = field(default_factory=dict)
    # Set when the items already are features (bring-your-own HDF5): no extractor needed;
    # the run is labelled with this name.
    precomputed_label: str | None = None

    @property
    def fingerprint(self) -> str:
        return digest(
            [self.kind, [(i.item_id, i.label, i.patient, i.fingerprint) for i in self.items]]
        )


@dataclass(frozen=True)
class DatasetSpec(Generic[OptionsT]):
    name: str
    description: str
    # Builds a data set from a path or name given on the command line.
    factory: Callable[[str, OptionsT], Dataset]
    options_model: type[OptionsT] = NoOptions  # type: ignore[assignment]
    # Says whether a path looks like this kind of data set (used to resolve --dataset PATH).
    detect: Callable[[Path], bool] | None = None


# --------------------------------------------------------------------------------------------
# Extractors
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Runtime:
    """Where and how an extractor runs; chosen by the run config, not by the plugin."""

    device: str = "cpu"  # resolved: "cpu" or "cuda[:N]"
    seed: int = 0
    batch_size: int | None = None
    num_workers: int | None = None


class Extractor(ABC):
    """A feature extractor: image → vector of ``feature_dim`` floats.

    ``preprocess`` runs in data-loader worker processes (it must be picklable and cheap to
    send); ``embed`` runs on the device with a batch of preprocessed tensors.
    """

    name: str
    feature_dim: int

    @abstractmethod
    def identity(self) -> dict[str, Any]:
        """What determines the features: architecture, weights digest, preprocessing.

        Combined with the item fingerprint and the code version into the feature-cache key.
        """

    @abstractmethod
    def preprocess(self, image: Image.Image) -> torch.Tensor:
        """An RGB PIL image → a CHW float tensor ready for ``embed``."""

    @abstractmethod
    def embed(self, batch: torch.Tensor) -> torch.Tensor:
        """A batch of preprocessed tensors (on CPU) → features (N × feature_dim)."""

    @property
    def precision(self) -> str:
        return "float32"

    @property
    def device(self) -> str:
        return "cpu"

    def feature_identity(self) -> dict[str, Any]:
        """``identity()`` plus how the numbers are computed: the precision (dtype, autocast)
        and the device class, which change feature values. Every feature cache (tiles, slide
        HDF5) keys on this, so bf16 GPU features never stand in for fp32 ones."""
        return {
            **self.identity(),
            "precision": self.precision,
            "device_class": self.device.split(":", 1)[0],
        }

    def cache_key(self) -> str:
        return digest(self.feature_identity(), length=24)


@dataclass(frozen=True)
class ExtractorSpec(Generic[OptionsT]):
    name: str
    description: str
    factory: Callable[[OptionsT, Runtime], Extractor]
    options_model: type[OptionsT] = NoOptions  # type: ignore[assignment]
    feature_dim: int | None = None  # None when it depends on the options (e.g. timm:<model>)
    # "timm" with prefix=True matches "timm:<suffix>"; the suffix fills ``suffix_field``.
    prefix: bool = False
    suffix_field: str | None = None


# --------------------------------------------------------------------------------------------
# Split plans
# --------------------------------------------------------------------------------------------

# Bump when the algorithm changes: a new version yields new plan ids instead of silently
# different folds under an old id.
PLAN_ALGORITHM = "histobench-grouped-stratified-kfold/v2"


@dataclass(frozen=True)
class SplitPlan:
    plan_id: str
    unit_ids: tuple[str, ...]
    assignments: np.ndarray  # (repeats, n_units): the test fold of each unit in each repeat
    repeats: int
    folds: int
    seed: int
    algorithm: str = PLAN_ALGORITHM  # "imported" for a plan read from a CSV file
    # Per unit, kept for export and checks: its patient and TCGA tissue-source site (or None).
    patients: tuple[str, ...] | None = None
    sites: tuple[str | None, ...] | None = None
    grouped_by: str = "patient"  # what kept units together: "patient", "site" or "none"
    recipe: str | None = None  # digest of the inputs that drew it; finds it in the store again

    @property
    def n_units(self) -> int:
        return len(self.unit_ids)

    def split(self, repeat: int, fold: int) -> tuple[np.ndarray, np.ndarray]:
        """(train indices, test indices) of one fold."""
        row = self.assignments[repeat]
        return np.flatnonzero(row != fold), np.flatnonzero(row == fold)

    def iter_folds(self) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
        for r in range(self.repeats):
            for k in range(self.folds):
                train, test = self.split(r, k)
                yield r, k, train, test

    def mean_train_test_sizes(self) -> tuple[float, float]:
        """Average n_train and n_test, as the corrected resampled t-test needs."""
        test = np.array([(self.assignments == k).sum(axis=1) for k in range(self.folds)])
        n_test = float(test.mean())
        return float(self.n_units - n_test), n_test


# --------------------------------------------------------------------------------------------
# Tasks
# --------------------------------------------------------------------------------------------


@dataclass
class Units:
    """What a task cross-validates over: tiles (crc-tissue) or patients (LUAD tasks).

    ``members[i]`` lists the indices of the data-set items whose features make unit ``i``
    (a tile is its own unit; a patient pools its slides' tiles).
    """

    ids: list[str]
    strata: np.ndarray  # integer labels used to stratify the split plan
    groups: list[str]  # units with the same group never straddle a fold boundary
    members: list[np.ndarray]


@dataclass
class TargetResult:
    """Scores for one target: a class (crc-tissue) or a gene (LUAD tasks)."""

    metric: str
    repeat_scores: np.ndarray  # (R,)
    fold_scores: np.ndarray | None = None  # (R, K), NaN where a fold cannot be scored
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. p-values, significance flags

    @property
    def mean(self) -> float:
        return float(np.nanmean(self.repeat_scores))


@dataclass
class Predictions:
    """Out-of-fold predictions for one target: every unit is predicted once per repeat.

    Stored with the run so paired tests (DeLong, per-item) need no refitting.
    """

    target: str
    y_true: np.ndarray  # (N,) in unit order
    y_pred: np.ndarray  # (R, N): predicted label index, value or probability
    y_score: np.ndarray | None = None  # (R, N) or (R, N, C): decision scores where useful


@dataclass
class TaskResult:
    metric: str
    fold_scores: np.ndarray  # (R, K) headline metric per fold
    repeat_scores: np.ndarray  # (R,) headline metric per repeat: the mean of its fold scores
    per_target: dict[str, TargetResult] = field(default_factory=dict)
    predictions: list[Predictions] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)  # estimator, skipped targets, …


class Task(ABC):
    """Turns features into cross-validated scores on a shared split plan."""

    name: str
    metric: str
    greater_is_better: bool = True
    target_kind: str = "target"  # what a per-target score is about: "class", "gene", …

    def check(self, dataset: Dataset) -> None:
        """Fail fast, before any feature is extracted, when the data set cannot serve this task
        (e.g. missing label files). Raise ``DataError``; the default accepts everything."""
        return None

    @abstractmethod
    def units(self, dataset: Dataset, items: Sequence[Item]) -> Units:
        """The units to cross-validate, built from the items that produced features."""

    @abstractmethod
    def evaluate(self, features: np.ndarray, units: Units, plan: SplitPlan) -> TaskResult:
        """Fit and score on every fold of ``plan``; ``features`` has one row per unit."""

    def describe(self) -> dict[str, Any]:
        """Recorded with the run: the estimator and every choice it made."""
        return {}

    # Options that cannot change a score (parallelism): left out of the evaluation identity,
    # so runs that differ only in them stay comparable.
    score_neutral_options: tuple[str, ...] = ("n_jobs",)

    def evaluation_modules(self) -> tuple[str, ...]:
        """Modules whose code computes this task's scores (digested into the evaluation
        identity). Default: the plugin's whole top-level package (its estimators usually live
        beside the task); for histobench's own tasks, ``histobench.tasks``."""
        parts = type(self).__module__.split(".")
        return (".".join(parts[:2]) if parts[0] == "histobench" and len(parts) > 2 else parts[0],)

    def evaluation_identity(self, dataset: Dataset) -> dict[str, Any]:
        """What, apart from the features, determines this task's scores; called after
        ``units``. Runs are compared only when these records (plus the labels, plan and code
        the runner adds) are equal. Override to add what only the task knows; keep the
        default's keys."""
        options = getattr(self, "options", None)
        values = options.model_dump(mode="json") if isinstance(options, BaseModel) else {}
        if isinstance(options, BaseModel):  # file-valued options count by content, not path
            values.update(
                {k: file_identity(v) for k, v in dict(options).items() if isinstance(v, Path)}
            )
        neutral = set(self.score_neutral_options)
        return {
            "task": self.name,
            "options": {k: v for k, v in values.items() if k not in neutral},
            "estimator": {k: v for k, v in self.describe().items() if k not in neutral},
            "metric": {
                "name": self.metric,
                "greater_is_better": self.greater_is_better,
                "target_kind": self.target_kind,
            },
        }


@dataclass(frozen=True)
class TaskSpec(Generic[OptionsT]):
    name: str
    description: str
    metric: str
    factory: Callable[[OptionsT], Task]
    options_model: type[OptionsT] = NoOptions  # type: ignore[assignment]
    # Looked up under HISTOBENCH_HOME/data/<standard_dataset> when --dataset is not given.
    standard_dataset: str | None = None
    # How a user obtains the standard data set (shown when it is missing).
    dataset_hint: str = ""
    # The data set plugin name used for ``--dataset demo``.
    demo_dataset: str | None = None
