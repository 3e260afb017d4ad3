"""The study's figures, from plain arrays and dicts (no run store, no CLI needed).

Figures are built on ``matplotlib.figure.Figure`` with an Agg canvas rather than through pyplot:
no global figure registry to leak memory in long leaderboard builds, no display needed, and
safe to call from worker threads. ``save_figure`` writes a PNG and an SVG side by side; the SVG
is made deterministic (fixed hash salt, no date) so regenerated figures do not churn in git.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from histobench.plugins.errors import DataError

if TYPE_CHECKING:
    from histobench.statistics.ranking import FriedmanNemenyiResult

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)  # attaches itself as fig.canvas
    return fig


def _color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _finite(values: Any) -> np.ndarray:
    x = np.asarray(values, dtype=float).ravel()
    return x[np.isfinite(x)]


def _need(mapping: Mapping[str, Any], what: str) -> None:
    if not mapping:
        raise DataError(f"{what}: nothing to plot (empty input)")


# --------------------------------------------------------------------------------------------
# Figure 2: distribution of the headline metric over repeats, per extractor
# --------------------------------------------------------------------------------------------


def repeat_distributions(
    scores: Mapping[str, Any], *, metric: str = "accuracy", title: str | None = None, seed: int = 0
) -> Figure:
    """Box plot with the individual repeats overlaid (jittered strip), one column per extractor."""
    _need(scores, "repeat_distributions")
    names = list(scores)
    data = [_finite(scores[n]) for n in names]
    fig = _figure(max(4.5, 1.4 + 1.3 * len(names)), 4.0)  # room for the title
    ax = fig.add_subplot()
    positions = np.arange(1, len(names) + 1)
    ax.boxplot(data, positions=positions, widths=0.5, showfliers=False)
    rng = np.random.default_rng(seed)  # jitter is cosmetic but must not change between builds
    for i, (pos, values) in enumerate(zip(positions, data, strict=True)):
        x = pos + rng.uniform(-0.15, 0.15, size=values.size)
        ax.scatter(x, values, s=14, alpha=0.7, color=_color(i), zorder=3, label=names[i])
    ax.set_xticks(positions, names)
    ax.set_ylabel(metric)
    ax.set_title(title or f"{metric} over CV repeats")
    ax.grid(axis="y", alpha=0.3)
    return fig


# --------------------------------------------------------------------------------------------
# Figure 3: per-class metric, grouped bars with error bars
# --------------------------------------------------------------------------------------------


def per_class_bars(
    per_class: Mapping[str, Mapping[str, Any]],
    *,
    metric: str = "accuracy",
    title: str | None = None,
) -> Figure:
    """Grouped bars: one group per class, one bar per extractor; height = mean over repeats,
    error bar = standard deviation over repeats. ``per_class[extractor][class]`` holds the
    per-repeat scores."""
    _need(per_class, "per_class_bars")
    names = list(per_class)
    classes = list(dict.fromkeys(c for n in names for c in per_class[n]))
    fig = _figure(max(5.0, 0.9 * len(classes) * max(1, len(names)) / 2 + 2), 4.0)
    ax = fig.add_subplot()
    width = 0.8 / len(names)
    x = np.arange(len(classes))
    for i, name in enumerate(names):
        vals = [_finite(per_class[name].get(c, [])) for c in classes]
        mean = [v.mean() if v.size else np.nan for v in vals]
        err = [v.std(ddof=1) if v.size > 1 else 0.0 for v in vals]
        ax.bar(
            x + (i - (len(names) - 1) / 2) * width,
            mean,
            width,
            yerr=err,
            capsize=2,
            color=_color(i),
            label=name,
        )
    ax.set_xticks(x, classes)
    ax.set_ylabel(f"{metric} (mean ± SD over repeats)")
    ax.set_title(title or f"per-class {metric}")
    ax.legend(loc="lower right", fontsize="small")
    ax.grid(axis="y", alpha=0.3)
    return fig


# --------------------------------------------------------------------------------------------
# Figure 4: per-gene difference between two extractors, sorted, significant genes marked
# --------------------------------------------------------------------------------------------


def per_gene_difference(
    genes: Sequence[str],
    difference: Any,
    *,
    significant: Any = None,
    labels: tuple[str, str] = ("A", "B"),
    metric: str = "Pearson r",
    show_names: bool | None = None,
) -> Figure:
    """Sorted bars of metric(A) − metric(B) per gene; significant genes (e.g. after Holm or BH)
    are drawn in a strong colour and marked with a star, the others in grey."""
    diff = np.asarray(difference, dtype=float)
    if diff.ndim != 1 or diff.size != len(genes) or diff.size == 0:
        raise DataError(
            f"per_gene_difference: need one difference per gene, got {diff.shape} for"
            f" {len(genes)} genes"
        )
    sig = np.zeros(diff.size, bool) if significant is None else np.asarray(significant, bool)
    order = np.argsort(-np.nan_to_num(diff, nan=-np.inf), kind="mergesort")
    d, s = diff[order], sig[order]
    names = [str(genes[i]) for i in order]
    show = diff.size <= 40 if show_names is None else show_names
    fig = _figure(max(5.0, 0.22 * diff.size + 1.5) if show else 7.0, 4.0)
    ax = fig.add_subplot()
    x = np.arange(d.size)
    colors = [
        (_color(0) if v >= 0 else _color(1)) if flag else "#bbbbbb"
        for v, flag in zip(d, s, strict=True)
    ]
    ax.bar(x, d, width=0.85, color=colors)
    if s.any():
        # The star sits just beyond the bar's tip, above or below the zero line.
        tip = d + np.sign(d) * 0.04 * max(1e-12, float(np.nanmax(np.abs(d))))
        ax.scatter(x[s], tip[s], marker="*", s=30, color="black", zorder=3, label="significant")
        ax.legend(loc="upper right", fontsize="small")
    ax.axhline(0.0, color="black", linewidth=0.8)
    if show:
        ax.set_xticks(x, names, rotation=90, fontsize="small")
    else:
        ax.set_xticks([])
        ax.set_xlabel(f"{d.size} genes, sorted")
    n_up = int(np.sum(d > 0))
    ax.set_ylabel(f"{metric}: {labels[0]} − {labels[1]}")
    ax.set_title(f"{labels[0]} better on {n_up} of {int(np.isfinite(d).sum())} genes")
    return fig


# --------------------------------------------------------------------------------------------
# Figure 5: observed vs predicted for chosen genes (small multiples)
# --------------------------------------------------------------------------------------------


def observed_vs_predicted(
    panels: Mapping[str, tuple[Any, Any]],
    *,
    ncols: int = 3,
    xlabel: str = "observed log expression",
    ylabel: str = "predicted",
) -> Figure:
    """One scatter per gene, ``panels[gene] = (observed, predicted)``, with the least-squares
    line and Pearson r in the panel title. Unused grid cells are removed."""
    _need(panels, "observed_vs_predicted")
    genes = list(panels)
    ncols = max(1, min(ncols, len(genes)))
    nrows = math.ceil(len(genes) / ncols)
    fig = _figure(3.0 * ncols, 2.8 * nrows)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for k, ax in enumerate(axes.ravel()):
        if k >= len(genes):
            ax.remove()
            continue
        obs = np.asarray(panels[genes[k]][0], dtype=float)
        pred = np.asarray(panels[genes[k]][1], dtype=float)
        if obs.shape != pred.shape:
            raise DataError(
                f"observed_vs_predicted: gene {genes[k]} has {obs.shape} observed and"
                f" {pred.shape} predicted values"
            )
        ok = np.isfinite(obs) & np.isfinite(pred)
        obs, pred = obs[ok], pred[ok]
        ax.scatter(obs, pred, s=8, alpha=0.6, color=_color(0))
        title = genes[k]
        if obs.size > 2 and np.ptp(obs) > 0 and np.ptp(pred) > 0:
            r = float(np.corrcoef(obs, pred)[0, 1])
            slope, intercept = np.polyfit(obs, pred, 1)
            xs = np.array([obs.min(), obs.max()])
            ax.plot(xs, slope * xs + intercept, color=_color(3), linewidth=1)
            title += f"  (r = {r:.2f})"
        ax.set_title(title, fontsize="medium")
        ax.set_xlabel(xlabel, fontsize="small")
        ax.set_ylabel(ylabel, fontsize="small")
    return fig


# --------------------------------------------------------------------------------------------
# Figure 6: per-gene AUC for two or more extractors
# --------------------------------------------------------------------------------------------


def per_gene_auc(
    genes: Sequence[str],
    aucs: Mapping[str, Any],
    *,
    errors: Mapping[str, Any] | None = None,
    title: str = "mutation prediction",
) -> Figure:
    """Grouped bars of AUC per gene, one bar per extractor, optional error bars (e.g. SD over
    repeats), with the chance line at 0.5."""
    _need(aucs, "per_gene_auc")
    names = list(aucs)
    x = np.arange(len(genes))
    width = 0.8 / len(names)
    fig = _figure(max(5.0, 0.5 * len(genes) * max(1, len(names)) / 2 + 2), 4.0)
    ax = fig.add_subplot()
    for i, name in enumerate(names):
        vals = np.asarray(aucs[name], dtype=float)
        if vals.shape != (len(genes),):
            raise DataError(
                f"per_gene_auc: extractor {name} has {vals.shape} AUCs for {len(genes)} genes"
            )
        err = None if errors is None or name not in errors else np.asarray(errors[name], float)
        ax.bar(
            x + (i - (len(names) - 1) / 2) * width,
            vals,
            width,
            yerr=err,
            capsize=2,
            color=_color(i),
            label=name,
        )
    ax.axhline(0.5, color="black", linestyle="--", linewidth=0.8, label="chance")
    ax.set_xticks(x, [str(g) for g in genes], rotation=45, ha="right")
    ax.set_ylabel("AUC")
    ax.set_ylim(0.0, 1.0)
    ax.set_title(title)
    ax.legend(loc="lower right", fontsize="small")
    return fig


# --------------------------------------------------------------------------------------------
# Critical-difference diagram (Demšar 2006) from ``friedman_nemenyi``
# --------------------------------------------------------------------------------------------


def critical_difference_diagram(
    result: FriedmanNemenyiResult, *, title: str | None = None
) -> Figure:
    """Average ranks on an axis (1 = best, on the left), the CD as a scale bar, and thick bars
    joining extractors whose ranks differ by less than the CD (not shown to differ)."""
    order = result.ordered()
    k = len(order)
    fig = _figure(6.5, 1.3 + 0.25 * k + 0.12 * len(result.cliques()))
    ax = fig.add_subplot()
    ax.set_xlim(0.5, k + 0.5)
    half = math.ceil(k / 2)
    cliques = result.cliques()
    # Label rows start below the clique bars, so neither ever overlaps the other.
    first_row = 0.6 + 0.25 * len(cliques)
    depth = first_row + 0.8 * (half - 1) + 0.6
    ax.set_ylim(depth, -1.6)
    ax.axis("off")
    ax.hlines(0, 1, k, color="black", linewidth=1)
    for r in range(1, k + 1):
        ax.vlines(r, -0.12, 0.12, color="black", linewidth=1)
        ax.text(r, -0.25, str(r), ha="center", va="bottom", fontsize="small")
    # Scale bar for the critical difference, top left.
    cd = result.critical_difference
    ax.hlines(-1.1, 1, 1 + cd, color="black", linewidth=1.5)
    ax.text(1 + cd / 2, -1.2, f"CD = {cd:.2f}", ha="center", va="bottom", fontsize="small")
    # Best half labelled on the left, worst half on the right (the usual layout).
    for i, (name, rank) in enumerate(order):
        left = i < half
        row = first_row + 0.8 * (i if left else k - 1 - i)
        x_text = 0.55 if left else k + 0.45
        ax.plot([rank, rank, x_text], [0, row, row], color="black", linewidth=0.8)
        ax.text(
            x_text,
            row,
            f"{name} ({rank:.2f})" if left else f"({rank:.2f}) {name}",
            ha="left" if left else "right",
            va="bottom",
            fontsize="small",
        )
    for j, group in enumerate(cliques):
        ranks = [dict(order)[g] for g in group]
        ax.hlines(0.35 + 0.25 * j, min(ranks) - 0.03, max(ranks) + 0.03, linewidth=4, color="#444")
    p = result.friedman.p_value
    ax.set_title(title or f"Friedman p = {p:.2g}, N = {result.n_blocks}, α = {result.alpha:g}")
    return fig


# --------------------------------------------------------------------------------------------
# Saving
# --------------------------------------------------------------------------------------------


def save_figure(fig: Figure, stem: str | Path, *, dpi: int = 150) -> tuple[Path, Path]:
    """Write ``<stem>.png`` and ``<stem>.svg`` (parent folders created); returns both paths."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    png, svg = stem.with_name(stem.name + ".png"), stem.with_name(stem.name + ".svg")
    fig.savefig(png, dpi=dpi, metadata={"Software": None})
    with matplotlib.rc_context({"svg.hashsalt": "histobench", "svg.fonttype": "none"}):
        fig.savefig(svg, metadata={"Date": None, "Creator": None})
    return png, svg
