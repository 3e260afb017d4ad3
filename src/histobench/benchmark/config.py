"""Run configuration: pydantic models, config files (TOML or YAML) and CLI overrides.

Precedence: defaults < config file < command-line flags. Plugin options are validated by the
plugin's own options model (see ``validate_options``), so each plugin owns its schema.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from histobench.plugins.errors import ConfigError
from histobench.plugins.specs import PluginOptions


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CVConfig(StrictModel):
    """The split plan: repeated, stratified K-fold, grouped by patient (or site) where known."""

    repeats: int = Field(50, ge=1, le=10_000, description="How many times K-fold CV is repeated.")
    folds: int = Field(5, ge=2, le=100, description="Number of folds (K).")
    group_by: Literal["patient", "site", "none"] = Field(
        "patient",
        description="What stays in one fold: 'patient' (all items of a patient; avoids "
        "leakage), 'site' (all patients of a TCGA tissue-source site, from barcodes or the "
        "patients map's site column) or 'none' (items split freely).",
    )
    plan: Path | None = Field(
        None,
        description="A split plan CSV (unit,patient,repeat,fold[,site]) to use instead of "
        "drawing one; repeats and folds then come from the file.",
    )

    @model_validator(mode="before")
    @classmethod
    def _legacy_group_by_patient(cls, data: Any) -> Any:
        """Configs written before ``group_by`` said ``group_by_patient = true|false``."""
        if not isinstance(data, dict) or "group_by_patient" not in data:
            return data
        data = dict(data)
        legacy = data.pop("group_by_patient")
        if not isinstance(legacy, bool):
            raise ValueError("group_by_patient must be true or false (better: group_by)")
        mapped = "patient" if legacy else "none"
        if data.setdefault("group_by", mapped) != mapped:
            raise ValueError(
                f"group_by_patient = {str(legacy).lower()} contradicts group_by = "
                f"'{data['group_by']}'; keep only group_by"
            )
        return data


class RunConfig(StrictModel):
    """Everything that defines a benchmark run; stored verbatim with its results."""

    extractor: str | None = Field(
        None,
        description="Extractor name (see `bench list extractors`); may be left out when the "
        "data set brings its own features.",
    )
    task: str = Field(description="Task name (see `bench list tasks`).")
    dataset: str | None = Field(
        None, description="A path, a name under HISTOBENCH_HOME/data, or 'demo'."
    )
    extractor_options: dict[str, Any] = Field(default_factory=dict)
    task_options: dict[str, Any] = Field(default_factory=dict)
    dataset_options: dict[str, Any] = Field(default_factory=dict)
    cv: CVConfig = Field(default_factory=CVConfig)  # type: ignore[arg-type]
    seed: int = Field(0, ge=0, description="Seeds the split plan and any stochastic step.")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    batch_size: int | None = Field(None, ge=1, description="Extraction batch (default per device).")
    num_workers: int | None = Field(None, ge=0, description="Data-loader worker processes.")
    max_skipped_fraction: float = Field(
        0.05,
        ge=0.0,
        le=1.0,
        description="Stop the run when more than this fraction of the data set's items are "
        "skipped as unreadable (bad items below it are recorded and reported).",
    )


def format_validation_error(error: ValidationError, source: str, prefix: str = "") -> str:
    """One line: the source (file or flags), then each failing field path and its problem."""
    parts = []
    for err in error.errors():
        loc = ".".join(str(p) for p in (prefix, *err["loc"]) if p != "")
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (check the spelling)"
        parts.append(f"{loc or '<root>'}: {msg}")
    return f"{source}: " + "; ".join(parts)


def load_config_file(path: Path) -> dict[str, Any]:
    """Read a TOML or YAML config file into a dict (validated later, as one)."""
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix.lower() in {".yaml", ".yml"}:
            data = yaml.safe_load(text) or {}
        else:
            data = tomllib.loads(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError, UnicodeDecodeError) as exc:
        detail = str(exc).splitlines()[0]
        raise ConfigError(f"{path}: not valid {_fmt(path)}: {detail}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a table of keys")
    return data


def _fmt(path: Path) -> str:
    return "YAML" if path.suffix.lower() in {".yaml", ".yml"} else "TOML"


def build_run_config(
    file: Path | None, overrides: dict[str, Any], cv_overrides: dict[str, Any]
) -> RunConfig:
    """Merge a config file with command-line overrides (flags win) and validate the result."""
    data: dict[str, Any] = load_config_file(file) if file else {}
    for key, value in overrides.items():
        if value is not None:
            data[key] = value
    cv = data.get("cv", {})
    if not isinstance(cv, dict):
        cv = {"__invalid__": cv}
    cv = dict(cv)
    cv.update({k: v for k, v in cv_overrides.items() if v is not None})
    if cv:
        data["cv"] = cv
    source = str(file) if file else "command line"
    try:
        return RunConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source)) from exc


def validate_options(
    model: type[PluginOptions], values: dict[str, Any], source: str, prefix: str
) -> PluginOptions:
    """Validate a plugin's options with the plugin's own pydantic model."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, source, prefix)) from exc


def run_config_schema() -> dict[str, Any]:
    return RunConfig.model_json_schema()
