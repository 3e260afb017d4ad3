"""The demo cohort: deterministic files, GDC-shaped labels with the planted signal, real slides."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from histobench.datasets.cohort import COHORT_DATASET_SPECS, load_cohort
from histobench.datasets.demo_cohort import DemoCohortOptions, demo_cohort, generate_demo_cohort


@pytest.fixture(scope="module")
def small_demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_demo_cohort(tmp_path_factory.mktemp("demo") / "cohort", patients=8)


def test_demo_cohort_labels_carry_the_planted_signal(small_demo: Path) -> None:
    toml = small_demo
    root = toml.parent
    truth = json.loads((root / "truth.json").read_text())
    ds = load_cohort(str(toml))
    patients = sorted(truth["STK11"])
    assert sorted({it.patient for it in ds.items}) == patients
    assert 8 <= len(ds.items) <= 16 and ds.precomputed_label is None  # slides: needs extractor
    assert ds.embed.keywords["tiling"].target_mpp == 0.5  # the cohort's [cohort.tiling]

    mut = ds.labels.mutations()
    stk11 = mut.values[:, mut.genes.index("STK11")]
    expected = [float(truth["STK11"][p]) for p in mut.patients]
    np.testing.assert_array_equal(stk11, expected)  # silent STK11 rows were not counted
    assert mut.report["variants_ignored"]["Silent"] >= 8  # TTN for everyone, some STK11

    expr = ds.labels.expression()
    assert expr.report["samples_dropped_by_type"] == 2  # the two normal-tissue samples
    lym = np.array([truth["lymphocyte_fraction"][p] for p in expr.patients])
    r_cd3g = np.corrcoef(lym, expr.values[:, expr.genes.index("CD3G")])[0, 1]
    r_fgf7 = np.corrcoef(lym, expr.values[:, expr.genes.index("FGF7")])[0, 1]
    assert r_cd3g > 0.8 and abs(r_fgf7) < 0.8


def test_demo_plugin_generates_once_under_home(hb_home: Path) -> None:
    spec = COHORT_DATASET_SPECS[1]
    assert spec.name == "demo-cohort"
    ds = spec.factory("", DemoCohortOptions(patients=8))
    toml = Path(ds.extra["cohort_file"])
    assert toml.is_relative_to(hb_home / "data" / "demo")
    first_mtime = toml.stat().st_mtime_ns
    assert demo_cohort(patients=8).stat().st_mtime_ns == first_mtime  # not regenerated


def test_demo_slides_are_pyramids_with_mpp_and_tissue_tiles(small_demo: Path) -> None:
    from histobench.datasets.wsi.reader import open_slide
    from histobench.datasets.wsi.tiling import TilingConfig, plan_tiles

    ds = load_cohort(str(small_demo))
    item = ds.items[0]
    config = ds.embed.keywords["tiling"]
    assert isinstance(config, TilingConfig)
    with open_slide(item.path) as slide:
        assert slide.mpp == 0.5 and slide.level_count == 3
        assert slide.dimensions == (1120, 1120)
        tiles = len(plan_tiles(slide, config))
    assert 10 <= tiles <= 25  # 5 × 5 patches minus bare glass


def test_demo_generation_is_deterministic(tmp_path: Path, small_demo: Path) -> None:
    a = small_demo.parent
    b = generate_demo_cohort(tmp_path / "b", patients=8).parent
    for name in ("mutations.maf", "expression.tsv", "truth.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    slide = sorted((a / "slides").iterdir())[0].name
    assert (a / "slides" / slide).read_bytes() == (b / "slides" / slide).read_bytes()
