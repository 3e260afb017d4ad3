"""Foundation-model extractors: the model of a recipe with its card's preprocessing and pooling
(the specs, e.g. ``--extractor uni --weights DIR``, are in :mod:`.specs`)."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

import torch
from PIL import Image

from histobench.extractors.backbones import TokenPooling
from histobench.extractors.foundation.checkpoint import load_model, require
from histobench.extractors.foundation.recipe import CardPreprocessing, Recipe
from histobench.extractors.foundation.specs import FoundationOptions
from histobench.extractors.weights import file_digest
from histobench.plugins.specs import Extractor, Runtime

# Largest batch that fitted, per (recipe, device name): probed once per process.
_PROBED: dict[tuple[str, str], int] = {}


class FoundationExtractor(Extractor):
    def __init__(self, recipe: Recipe, options: FoundationOptions, runtime: Runtime) -> None:
        path = require(recipe, options.weights)
        self.name = recipe.name
        self.feature_dim = recipe.feature_dim
        self.recipe = recipe
        self.preprocessing = CardPreprocessing.of(recipe.input)
        self.weights_path = path
        self._identity = {
            "extractor": recipe.name,
            "recipe": recipe.describe(),
            "weights_digest": file_digest(path),
            "licence": recipe.licence,
            "compiled": options.compile,
        }
        self.model: torch.nn.Module = TokenPooling(
            load_model(recipe, path), recipe.tokens, recipe.truncate_after
        )
        self._compile = options.compile
        self._device = torch.device("cpu")
        self.to_device(runtime.device)

    def identity(self) -> dict[str, Any]:
        return self._identity

    @property
    def device(self) -> str:
        return str(self._device)

    def to_device(self, device: str) -> None:
        self._device = torch.device(device)
        self.model = self.model.to(self._device)
        if self._compile:
            self.model = torch.compile(self.model)  # type: ignore[assignment]

    @property
    def precision(self) -> str:
        return "bfloat16-autocast" if self._device.type == "cuda" else "float32"

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        return self.preprocessing(image)

    @torch.inference_mode()
    def embed(self, batch: torch.Tensor) -> torch.Tensor:
        batch = batch.to(self._device, non_blocking=True)
        cuda = self._device.type == "cuda"
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else nullcontext()
        with autocast:
            out = self.model(batch)
        return out.float().flatten(1).cpu()

    @property
    def preferred_batch_size(self) -> int | None:
        """On a GPU, the largest power-of-two batch (≤ 512) that runs, probed once per model
        and device; None on a CPU (the engine's measured default applies)."""
        if self._device.type != "cuda":
            return None
        key = (self.name, torch.cuda.get_device_name(self._device))
        if key not in _PROBED:
            _PROBED[key] = self._probe()
        return _PROBED[key]

    def _probe(self) -> int:
        size, best = 8, 4
        while size <= 512:
            try:
                self.embed(torch.zeros(size, 3, self.preprocessing.size, self.preprocessing.size))
            except torch.OutOfMemoryError:
                break
            finally:
                torch.cuda.empty_cache()
            best, size = size, size * 2
        return best
