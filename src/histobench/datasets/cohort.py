"""The ``cohort`` data set: a TOML file that says where a cohort's slides or features and its
mutation and expression labels are.

```toml
[cohort]
name = "tcga-luad"
features = "features/"          # or slides = "slides/" (a folder or a manifest CSV)
mutations = "mutations.maf.gz"  # GDC MAF, wide true/false table, or long positives list
expression = "expression.tsv"   # wide matrix or a folder of GDC STAR-counts files
genes = ["STK11", "TP53"]       # or genes_file = "genes.txt"
```

Every key is validated (unknown keys are errors) and paths are relative to the file. Labels
are read lazily, on first use by a task, so a mutation run never parses the expression files.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import time
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from histobench.benchmark.config import format_validation_error
from histobench.benchmark.progress import make_progress
from histobench.datasets.demo_cohort import DemoCohortOptions, load_demo_cohort
from histobench.datasets.labels.common import read_id_list
from histobench.datasets.labels.expression import Orientation, Transform, load_expression
from histobench.datasets.labels.mutations import NON_SILENT, MutationFormat, load_mutations
from histobench.plugins.errors import ConfigError, DataError
from histobench.plugins.labels import LabelMatrix, patient_key
from histobench.plugins.specs import (
    Dataset,
    DatasetSpec,
    ExtractionResult,
    Extractor,
    Item,
    PluginOptions,
    Runtime,
    SkippedItem,
)

FEATURE_SUFFIXES = (".h5", ".hdf5")


class CohortSection(BaseModel):
    """The ``[cohort]`` table; every field is recorded with the runs that use it."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, description="Cohort name (default: the file's stem).")
    slides: Path | None = Field(None, description="Folder of slides or a slide manifest CSV.")
    features: Path | None = Field(
        None, description="Folder of per-slide or per-patient HDF5 features (CLAM/TRIDENT)."
    )
    extractor: str | None = Field(
        None, description="Label of precomputed features (default: the features folder's name)."
    )
    tiling: dict[str, Any] | None = Field(
        None, description="Tiling options for slides (histobench.datasets.wsi TilingConfig)."
    )
    stain: dict[str, Any] | None = Field(
        None, description="Stain normalisation for slides (histobench.datasets.wsi StainConfig)."
    )
    mutations: Path | None = Field(
        None, description="GDC MAF, wide table, long list or headerless positives list."
    )
    mutations_format: MutationFormat = "auto"
    variant_classifications: list[str] = Field(
        default_factory=lambda: list(NON_SILENT),
        description="MAF Variant_Classification values that count as mutated.",
    )
    patient_column: str | None = Field(
        None, description="Patient column of a mutation table (default: the TCGA barcodes)."
    )
    gene_column: str | None = Field(None, description="Gene column of a long positives list.")
    patients_file: Path | None = Field(
        None, description="All patients (one per line); needed by a long or positives list."
    )
    expression: Path | None = Field(None, description="Matrix file or STAR-counts folder.")
    expression_orientation: Orientation = "auto"
    expression_transform: Transform = "log2p1"
    expression_value: str = Field("tpm_unstranded", description="STAR-counts value column.")
    expression_sample_types: list[str] | None = Field(
        default_factory=lambda: ["01"],
        description="TCGA sample type codes kept (01 = primary tumour); empty list = all.",
    )
    sample_sheet: Path | None = Field(None, description="GDC sample sheet for STAR files.")
    genes: list[str] | None = None
    genes_file: Path | None = None

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str | None) -> str | None:
        # The name labels runs and may name files: it must not be able to point elsewhere.
        if name is not None and (
            not name.strip() or "/" in name or "\\" in name or name.strip(".") == ""
        ):
            raise ValueError("must be a plain name (no '/', '\\', or only dots)")
        return name

    @model_validator(mode="after")
    def _one_source(self) -> CohortSection:
        if (self.slides is None) == (self.features is None):
            raise ValueError("give exactly one of 'slides' and 'features'")
        if self.mutations is None and self.expression is None:
            raise ValueError("give 'mutations' and/or 'expression'")
        if self.genes is not None and self.genes_file is not None:
            raise ValueError("give 'genes' or 'genes_file', not both")
        return self


class CohortFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cohort: CohortSection


class CohortOptions(PluginOptions):
    """No options: everything is in the cohort file."""


_PATH_FIELDS = (
    "slides",
    "features",
    "mutations",
    "patients_file",
    "expression",
    "sample_sheet",
    "genes_file",
)


def read_cohort_file(path: Path) -> CohortSection:
    """Parse and validate; relative paths are resolved against the file's folder."""
    try:
        data = tomllib.loads(_toml_text(path))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read cohort file: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {str(exc).splitlines()[0]}") from exc
    try:
        section = CohortFile.model_validate(data).cohort
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, str(path))) from exc
    updates = {}
    for name in _PATH_FIELDS:
        value = getattr(section, name)
        if value is None:
            continue
        full = value if value.is_absolute() else (path.parent / value)
        if not full.exists():
            raise DataError(f"{path}: cohort.{name}: {full} not found")
        updates[name] = full
    return section.model_copy(update=updates)


def _toml_text(path: Path) -> str:
    """The file as TOML text: a BOM dropped, old-Mac CR line endings made LF (TOML forbids
    a bare CR, but editors still write them)."""
    text = path.read_text(encoding="utf-8-sig")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def looks_like_cohort(path: Path) -> bool:
    if not (path.is_file() and path.suffix.lower() == ".toml"):
        return False
    try:
        data = tomllib.loads(_toml_text(path))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    return isinstance(data.get("cohort"), dict)


class CohortLabels:
    """Mutation and expression labels of a cohort, read on first use and kept."""

    def __init__(self, section: CohortSection, source: Path) -> None:
        self.section = section
        self.source = source
        self._mutations: LabelMatrix | None = None
        self._expression: LabelMatrix | None = None

    def genes(self) -> list[str] | None:
        """The cohort's gene list (``genes`` or ``genes_file``), None when it gives none."""
        if self.section.genes is not None:
            return list(self.section.genes)
        if self.section.genes_file is not None:
            return read_id_list(self.section.genes_file, "genes")
        return None

    def mutations(self, genes: list[str] | None = None) -> LabelMatrix:
        if self.section.mutations is None:
            raise DataError(f"{self.source}: the cohort gives no 'mutations'")
        if self._mutations is None:
            s = self.section
            self._mutations = load_mutations(
                s.mutations,  # type: ignore[arg-type]
                format=s.mutations_format,
                variant_classifications=s.variant_classifications,
                patient_column=s.patient_column,
                gene_column=s.gene_column,
                patients_file=s.patients_file,
                genes=genes,
            )
        return self._mutations

    def expression(self, genes: list[str] | None = None) -> LabelMatrix:
        if self.section.expression is None:
            raise DataError(f"{self.source}: the cohort gives no 'expression'")
        if self._expression is None:
            s = self.section
            self._expression = load_expression(
                s.expression,  # type: ignore[arg-type]
                orientation=s.expression_orientation,
                transform=s.expression_transform,
                value_column=s.expression_value,
                sample_types=s.expression_sample_types or None,
                sample_sheet=s.sample_sheet,
                genes=genes,
            )
        return self._expression


def _quick_fingerprint(path: Path) -> str:
    """Size + first MiB: feature files and slides are written once, then only read."""
    digest = hashlib.sha256(str(path.stat().st_size).encode())
    with path.open("rb") as fh:
        digest.update(fh.read(1 << 20))
    return digest.hexdigest()[:24]


def _feature_items(folder: Path) -> list[Item]:
    files = sorted(
        p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in FEATURE_SUFFIXES
    )
    if not files:
        raise DataError(f"{folder}: no .h5 feature files")
    items = []
    for file in files:
        item_id = str(file.relative_to(folder).with_suffix(""))
        # Per-slide files are named by slide barcode, per-patient files by patient: both
        # reduce to the patient barcode; a non-TCGA name is its own patient.
        items.append(
            Item(
                item_id, file, patient=patient_key(file.stem), fingerprint=_quick_fingerprint(file)
            )
        )
    return items


def embed_feature_files(
    extractor: Extractor | None, items: Sequence[Item], runtime: Runtime
) -> ExtractionResult:
    """Precomputed HDF5 features → one mean vector per file, weighted later by its rows.

    ``tile_counts`` holds each file's number of rows, so a patient with several slide files
    becomes the mean over all its tiles. Unreadable or empty files are skipped and reported.
    """
    from histobench.benchmark.h5io import read_slide_features

    start = time.perf_counter()
    rows: list[np.ndarray] = []
    ok: list[int] = []
    counts: list[int] = []
    skipped: list[SkippedItem] = []
    dim: tuple[int, Path] | None = None
    with make_progress() as progress:
        bar = progress.add_task("reading features", total=len(items), rate="")
        for i, item in enumerate(items):
            progress.update(bar, advance=1)
            try:
                features, _, _ = read_slide_features(item.path)
            except DataError as exc:
                skipped.append(SkippedItem(item.item_id, str(exc)))
                continue
            if features.shape[0] == 0:
                skipped.append(SkippedItem(item.item_id, f"{item.path}: no feature rows"))
                continue
            if not np.issubdtype(features.dtype, np.number):
                reason = f"{item.path}: 'features' holds {features.dtype}, not numbers"
                skipped.append(SkippedItem(item.item_id, reason))
                continue
            if dim is None:
                dim = (features.shape[1], item.path)
            elif features.shape[1] != dim[0]:
                raise DataError(
                    f"{item.path}: {features.shape[1]} features per row, but {dim[1]} has {dim[0]}"
                )
            vector = features.astype(np.float64).mean(axis=0)
            if not np.all(np.isfinite(vector)):
                skipped.append(SkippedItem(item.item_id, f"{item.path}: NaN or infinite features"))
                continue
            rows.append(vector.astype(np.float32))
            ok.append(i)
            counts.append(features.shape[0])
    width = dim[0] if dim else 0
    return ExtractionResult(
        features=np.stack(rows) if rows else np.empty((0, width), np.float32),
        ok=ok,
        skipped=skipped,
        cached=len(ok),
        computed=0,
        seconds=time.perf_counter() - start,
        tile_counts=np.asarray(counts, dtype=np.float64),
        details={"source": "precomputed HDF5 features", "files": len(items), "dim": width},
    )


def _slide_embedder(section: CohortSection, path: Path) -> Any:
    """``embed_slides`` bound to the cohort's tiling and stain sections (validated here)."""
    from histobench.datasets.wsi.embed import embed_slides
    from histobench.datasets.wsi.stain import StainConfig
    from histobench.datasets.wsi.tiling import TilingConfig

    try:
        tiling = TilingConfig.model_validate(section.tiling or {})
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, str(path), "cohort.tiling")) from exc
    try:
        stain = StainConfig.model_validate(section.stain or {})
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, str(path), "cohort.stain")) from exc
    return functools.partial(embed_slides, tiling=tiling, stain=stain)


def _slide_items(source: Path) -> list[Item]:
    from histobench.datasets.wsi.dataset import slide_items

    # Patients normalised like the label tables' (12-character TCGA barcodes).
    return [
        dataclasses.replace(item, patient=patient_key(item.patient or item.item_id))
        for item in slide_items(source)
    ]


def load_cohort(source: str, options: PluginOptions | None = None) -> Dataset:
    """The ``cohort`` plugin's factory: a cohort TOML file → a data set of slides or features."""
    path = Path(source).expanduser()
    if not path.is_file():
        raise DataError(f"{path}: cohort file not found")
    section = read_cohort_file(path)
    name = section.name or path.stem
    labels = CohortLabels(section, path)
    extra = {"cohort_file": str(path), "cohort": section.model_dump(mode="json")}
    if section.features is not None:
        folder = section.features
        items = _feature_items(folder) if folder.is_dir() else _feature_items_file(folder)
        return Dataset(
            name=name,
            kind="cohort",
            items=items,
            root=path.parent,
            labels=labels,
            extra=extra,
            embed=embed_feature_files,
            precomputed_label=section.extractor or folder.name,
        )
    embed = _slide_embedder(section, path)
    items = _slide_items(section.slides)  # type: ignore[arg-type]
    return Dataset(
        name=name,
        kind="cohort",
        items=items,
        root=path.parent,
        labels=labels,
        extra=extra,
        embed=embed,
    )


def _feature_items_file(path: Path) -> list[Item]:
    raise DataError(f"{path}: cohort.features must be a folder of .h5 files")


COHORT_DATASET_SPECS: list[DatasetSpec[Any]] = [
    DatasetSpec(
        name="cohort",
        description="A cohort TOML: slides or precomputed HDF5 features, with mutation "
        "(MAF, wide, long) and expression (matrix, STAR counts) labels.",
        factory=load_cohort,
        options_model=CohortOptions,
        detect=looks_like_cohort,
    ),
    DatasetSpec(
        name="demo-cohort",
        description="Synthetic LUAD-like cohort (24 patients, pyramidal TIFFs, MAF, "
        "expression) with planted signal; generated once, seeded.",
        factory=load_demo_cohort,
        options_model=DemoCohortOptions,
    ),
]
