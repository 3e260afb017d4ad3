"""The study's figures: structure of each Figure, and valid PNG/SVG files on disk."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from matplotlib.collections import PathCollection
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from PIL import Image

from histobench.leaderboard.figures import (
    critical_difference_diagram,
    observed_vs_predicted,
    per_class_bars,
    per_gene_auc,
    per_gene_difference,
    repeat_distributions,
    save_figure,
)
from histobench.plugins.errors import DataError
from histobench.statistics import friedman_nemenyi

CLASSES = ["ADI", "BACK", "DEB", "LYM", "MUC", "MUS", "NORM", "STR", "TUM"]


def _bars(ax) -> list[Rectangle]:
    return [p for p in ax.patches if isinstance(p, Rectangle)]


def _assert_valid_files(fig: Figure, stem: Path) -> None:
    png, svg = save_figure(fig, stem)
    assert (png, svg) == (stem.with_suffix(".png"), stem.with_suffix(".svg"))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(png) as im:
        im.verify()
    with Image.open(png) as im:
        assert im.size[0] > 100 and im.size[1] > 100
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")
    first = svg.read_bytes()
    save_figure(fig, stem)
    assert svg.read_bytes() == first  # deterministic SVG: no dates, fixed ids


def test_figure2_repeat_distributions(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    fig = repeat_distributions(
        {"FTX": rng.normal(0.984, 0.003, 50), "IMGNET": rng.normal(0.964, 0.004, 50)}
    )
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_xticklabels()] == ["FTX", "IMGNET"]
    strips = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(strips) == 2 and all(len(c.get_offsets()) == 50 for c in strips)
    assert ax.get_ylabel() == "accuracy"
    _assert_valid_files(fig, tmp_path / "out" / "figure2")


def test_figure3_per_class_bars(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    data = {name: {c: rng.normal(0.9, 0.02, 10) for c in CLASSES} for name in ("FTX", "IMGNET")}
    fig = per_class_bars(data)
    (ax,) = fig.axes
    assert len(_bars(ax)) == len(CLASSES) * 2
    assert [t.get_text() for t in ax.get_xticklabels()] == CLASSES
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["FTX", "IMGNET"]
    heights = [b.get_height() for b in _bars(ax)][: len(CLASSES)]
    assert heights == pytest.approx([np.mean(data["FTX"][c]) for c in CLASSES])
    _assert_valid_files(fig, tmp_path / "figure3")


def test_figure4_per_gene_difference_is_sorted_and_marks_significance(tmp_path: Path) -> None:
    genes = [f"G{i}" for i in range(12)]
    diff = np.linspace(-0.1, 0.12, 12)[::-1][np.random.default_rng(2).permutation(12)]
    sig = np.abs(diff) > 0.08
    fig = per_gene_difference(genes, diff, significant=sig, labels=("FTX", "IMGNET"))
    (ax,) = fig.axes
    heights = [b.get_height() for b in _bars(ax)]
    assert len(heights) == 12 and heights == sorted(heights, reverse=True)
    stars = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert len(stars) == 1 and len(stars[0].get_offsets()) == int(sig.sum())
    labels = [t.get_text() for t in ax.get_xticklabels()]
    assert labels[0] == genes[int(np.argmax(diff))]
    assert ax.get_title() == f"FTX better on {int((diff > 0).sum())} of 12 genes"
    _assert_valid_files(fig, tmp_path / "figure4")
    with pytest.raises(DataError, match="one difference per gene"):
        per_gene_difference(genes, diff[:5])


def test_figure5_small_multiples(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    genes = ["CD274", "CD3G", "TNFRSF9", "FGF7"]
    panels = {}
    for g in genes:
        obs = rng.normal(size=40)
        panels[g] = (obs, 0.6 * obs + rng.normal(0, 0.5, 40))
    fig = observed_vs_predicted(panels, ncols=3)
    assert len(fig.axes) == 4  # 2×3 grid, the two unused cells removed
    r = np.corrcoef(*panels["CD274"])[0, 1]
    assert fig.axes[0].get_title() == f"CD274  (r = {r:.2f})"
    assert all(len(ax.lines) == 1 for ax in fig.axes)  # fitted line per panel
    _assert_valid_files(fig, tmp_path / "figure5")


def test_figure6_per_gene_auc(tmp_path: Path) -> None:
    genes = ["STK11", "TP53", "LRP1B", "NF1", "FAT1", "FAT4", "KEAP1", "EGFR", "KRAS"]
    rng = np.random.default_rng(4)
    aucs = {n: rng.uniform(0.5, 0.7, 9) for n in ("FTX", "IMGNET", "other")}
    fig = per_gene_auc(genes, aucs, errors={"FTX": np.full(9, 0.02)})
    (ax,) = fig.axes
    assert len(_bars(ax)) == 27
    assert [t.get_text() for t in ax.get_xticklabels()] == genes
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["chance", "FTX", "IMGNET", "other"]
    (chance,) = [ln for ln in ax.lines if ln.get_label() == "chance"]
    assert list(chance.get_ydata()) == [0.5, 0.5]
    _assert_valid_files(fig, tmp_path / "figure6")


def test_critical_difference_diagram(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    names = ["ftx", "imgnet", "uni", "conch", "resnet50"]
    res = friedman_nemenyi(rng.normal(size=(15, 5)) + np.linspace(0, 1.2, 5), names)
    fig = critical_difference_diagram(res)
    (ax,) = fig.axes
    texts = [t.get_text() for t in ax.texts]
    for name, rank in res.ordered():
        assert any(name in t and f"{rank:.2f}" in t for t in texts)
    assert f"CD = {res.critical_difference:.2f}" in texts
    # line collections: the rank axis, one tick per rank, the CD scale bar, one bar per clique
    assert len(res.cliques()) >= 1
    assert len(ax.collections) == 1 + len(names) + 1 + len(res.cliques())
    _assert_valid_files(fig, tmp_path / "cd")


def test_empty_input_is_a_clear_error() -> None:
    with pytest.raises(DataError, match="empty"):
        repeat_distributions({})
