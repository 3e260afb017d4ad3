"""Every recipe: a random checkpoint in its publisher's layout loads strictly and gives features
of the stated dimension on real CRC tiles (reduced depth: the key mapping is the point)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from histobench.extractors.foundation.extractor import FoundationExtractor, FoundationOptions
from histobench.extractors.foundation.registry import RECIPES
from histobench.plugins.specs import Runtime
from tests.extractors.foundation.publisher import crc_tiles, reduced, write_snapshot


@pytest.mark.parametrize("name", list(RECIPES))
def test_recipe_loads_strictly_and_embeds_real_tiles(name: str, tmp_path: Path) -> None:
    recipe = reduced(RECIPES[name])
    path, _ = write_snapshot(recipe, tmp_path / name)
    extractor = FoundationExtractor(recipe, FoundationOptions(weights=path), Runtime())
    batch = torch.stack([extractor.preprocess(Image.open(t)) for t in crc_tiles(2)])
    features = extractor.embed(batch).numpy()
    assert features.shape == (2, recipe.feature_dim) == (2, RECIPES[name].feature_dim)
    assert np.isfinite(features).all()
    assert not np.allclose(features[0], features[1])  # two tissue classes, two embeddings
    identity = extractor.identity()
    assert identity["recipe"]["recipe"] == name and len(identity["weights_digest"]) == 64
    assert identity["licence"] == RECIPES[name].licence


def test_every_recipe_cites_its_card_and_licence() -> None:
    for recipe in RECIPES.values():
        assert recipe.card.startswith("https://"), recipe.name
        assert recipe.licence and recipe.feature_dim > 0, recipe.name


def test_the_light_catalog_matches_the_recipe_table() -> None:
    # The specs list the recipes without importing timm; the catalog they use must say
    # exactly what the recipes say, in the same order.
    from histobench.extractors.foundation.registry import RECIPES
    from histobench.extractors.foundation.specs import CATALOG, FOUNDATION_SPECS

    assert tuple((r.name, r.title, r.feature_dim, r.licence) for r in RECIPES.values()) == CATALOG
    assert [s.name for s in FOUNDATION_SPECS] == list(RECIPES)
    assert all(s.feature_dim == RECIPES[s.name].feature_dim for s in FOUNDATION_SPECS)
