"""The FTX fine-tuning recipe as a validated config; every default is the study's.

A ``FinetuneRecipe`` holds what decides the trained weights (it is the run's identity together
with the data digest and the backbone's weights digest). ``RunOptions`` holds what does not:
where to read and write, which device, how many loader workers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError

from histobench.plugins.errors import ConfigError
from histobench.plugins.specs import PluginOptions


class FinetuneRecipe(PluginOptions):
    backbone: str = Field(
        "xception", description="effnet-lite0, xception (the study's) or timm:<model-name>."
    )
    pretrained: bool = Field(
        True,
        description="Start Part A from its ImageNet weights (the study); False: a seeded random "
        "init, for tests and ablations.",
    )
    hidden_dim: int = Field(
        2048, ge=1, description="Width of Part B's two hidden layers (the features)."
    )
    step1_epochs: int = Field(20, ge=0, description="Step 1: Part A frozen, Part B trained.")
    step2_epochs: int = Field(10, ge=0, description="Step 2: Part B frozen, Part A fine-tuned.")
    batch_size: int = Field(128, ge=1, description="Training batch size (both steps).")
    lr1: float = Field(4e-4, gt=0, description="Adam learning rate of step 1.")
    lr2: float = Field(5e-5, gt=0, description="Adam learning rate of step 2.")
    # The study trained in Keras, whose Adam epsilon is 1e-7 (torch's default is 1e-8).
    adam_eps: float = Field(1e-7, gt=0, description="Adam epsilon (Keras default).")
    val_fraction: float = Field(
        0.1,
        ge=0.0,
        lt=1.0,
        description="Held-out validation share (stratified, patient-grouped, seeded); the "
        "study does not state one; 0 trains on everything.",
    )
    seed: int = Field(0, description="Seeds the split, the head init and the data order.")
    augment: Literal["none", "flips"] = Field(
        "none", description="none (the study) or random horizontal/vertical flips."
    )
    input_size: int = Field(224, ge=32, le=1024, description="Tiles are resized to this size.")
    # Keras' fit() runs unfrozen batch-norm layers in training mode; "frozen" keeps the
    # ImageNet statistics (a common alternative for small data).
    step2_batchnorm: Literal["train", "frozen"] = Field(
        "train", description="Batch-norm mode of Part A in step 2."
    )
    # Step 1 cannot change Part A, so without augmentation its pooled features are computed
    # once and Part B trains on them: same mathematics, ~20x less backbone work.
    step1_cache_features: bool = Field(
        True, description="Step 1 on precomputed Part A features (when augment is none)."
    )
    classes: list[str] | None = Field(
        None, description="Expected class names; the data folder must match them exactly."
    )

    @property
    def total_epochs(self) -> int:
        return self.step1_epochs + self.step2_epochs


class RunOptions(PluginOptions):
    data: Path = Field(description="A tile folder in the NCT-CRC layout (<root>/<CLASS>/<tile>).")
    out: Path = Field(description="Output folder (weights, model card, curves, checkpoints).")
    weights: Path | None = Field(None, description="Backbone weights file (ImageNet).")
    device: Literal["auto", "cpu", "cuda"] = "auto"
    num_workers: int | None = Field(None, ge=0, description="Data-loader worker processes.")
    overwrite: bool = Field(False, description="Replace a different run's outputs in --out.")


def validated(model: type[PluginOptions], values: dict[str, object]) -> PluginOptions:
    """Validate into a one-line ConfigError naming the field (never a pydantic traceback)."""
    try:
        return model(**values)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "recipe"
        raise ConfigError(f"finetune option '{field}': {err['msg']}") from exc
