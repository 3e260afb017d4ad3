"""The recipe table: every foundation model histobench knows by name."""

from __future__ import annotations

from histobench.extractors.foundation import (
    baselines,
    bioptimus,
    gigapath,
    histai,
    kaiko,
    mahmood,
    owkin,
    paige,
    transpath,
)
from histobench.extractors.foundation.recipe import Recipe
from histobench.plugins.errors import ConfigError

RECIPES: dict[str, Recipe] = {
    r.name: r
    for family in (mahmood, paige, bioptimus, owkin, gigapath, kaiko, histai, transpath, baselines)
    for r in family.RECIPES
}


def recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise ConfigError(
            f"unknown foundation model '{name}' (known: {', '.join(RECIPES)})"
        ) from None
