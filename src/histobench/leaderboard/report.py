"""The HTML report: one self-contained static file with the leaderboard and the study's figures.

Figures are embedded as base64 PNG (no network, no external CSS/JS), and also written as PNG and
SVG files in ``<name>_figures/`` next to the HTML. Tables sort on a header click through a few
lines of inline JavaScript; the CSS is responsive (tables scroll sideways on a phone, figures
shrink to the screen width).
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from histobench.benchmark.store import ResultsStore, RunRecord
from histobench.leaderboard.report_figures import FigureFile, group_slug, task_figures
from histobench.leaderboard.tables import (
    Leaderboard,
    build_leaderboard,
    fmt,
    fmt_p,
    p_vs_best_note,
    plural,
)
from histobench.plugins.errors import DataError

# --------------------------------------------------------------------------------------------
# HTML
# --------------------------------------------------------------------------------------------

CSS = """
:root { --fg:#1b1f24; --muted:#57606a; --line:#d0d7de; --head:#f6f8fa; --accent:#0969da; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
  color:var(--fg); background:#fff; }
main { max-width:1200px; margin:0 auto; padding:1rem; }
h1 { font-size:1.6rem; margin:.5rem 0; } h2 { font-size:1.3rem; margin-top:2rem;
  border-bottom:1px solid var(--line); padding-bottom:.3rem; } h3 { font-size:1.05rem; }
p.meta, .note, figcaption { color:var(--muted); font-size:.9rem; }
.scroll { overflow-x:auto; -webkit-overflow-scrolling:touch; margin:.5rem 0 1rem; }
table { border-collapse:collapse; min-width:100%; font-variant-numeric:tabular-nums; }
th, td { border:1px solid var(--line); padding:.3rem .5rem; text-align:left; white-space:nowrap; }
td.num { text-align:right; }
th { background:var(--head); cursor:pointer; user-select:none; position:relative;
  padding-right:1.2rem; }
th::after { content:"\\2195"; position:absolute; right:.3rem; color:#aaa; font-size:.8em; }
th[aria-sort="ascending"]::after { content:"\\2191"; color:var(--accent); }
th[aria-sort="descending"]::after { content:"\\2193"; color:var(--accent); }
tr.best td { font-weight:600; }
code { font-size:.85em; }
.figs { display:grid; grid-template-columns:repeat(auto-fit,minmax(min(100%,420px),1fr));
  gap:1rem; align-items:start; }
figure { margin:0; border:1px solid var(--line); border-radius:6px; padding:.5rem; }
figure.wide { grid-column:1 / -1; }
figure img { display:block; margin:0 auto; width:auto; height:auto; max-width:100%;
  max-height:460px; }
figure.wide img { max-height:560px; }
ul { padding-left:1.2rem; }
@media (max-width:600px) { body { font-size:14px; } main { padding:.6rem; }
  h1 { font-size:1.3rem; } }
"""

# Sort on click (or Enter): numbers by data-sort, text otherwise, blanks last either way.
JS = """
(function () {
  function key(cell) {
    var raw = cell.getAttribute('data-sort');
    if (raw === null) raw = cell.textContent.trim();
    if (raw === '' || raw === '\\u2013') return null;
    var n = Number(raw);
    return isNaN(n) ? raw.toLowerCase() : n;
  }
  function sortBy(table, col, th) {
    var asc = th.getAttribute('aria-sort') !== 'ascending';
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (h) {
      h.removeAttribute('aria-sort');
    });
    th.setAttribute('aria-sort', asc ? 'ascending' : 'descending');
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a.cells[col]), y = key(b.cells[col]);
      if (x === null) return y === null ? 0 : 1;
      if (y === null) return -1;
      var c = x < y ? -1 : x > y ? 1 : 0;
      return asc ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  document.querySelectorAll('table.sortable').forEach(function (table) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
      th.tabIndex = 0;
      th.title = 'sort';
      th.addEventListener('click', function () { sortBy(table, col, th); });
      th.addEventListener('keydown', function (e) {
        if (e.key === 'Enter') { sortBy(table, col, th); }
      });
    });
  });
})();
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _cell(text: str, sort: Any = None, num: bool = False) -> str:
    attrs = ' class="num"' if num else ""
    if sort is not None and not (isinstance(sort, float) and not math.isfinite(sort)):
        attrs += f' data-sort="{_e(sort)}"'
    return f"<td{attrs}>{_e(text)}</td>"


def _table(headers: Sequence[str], body: Sequence[str], caption: str = "") -> str:
    head = "".join(f'<th scope="col">{_e(h)}</th>' for h in headers)
    cap = f"<caption class=note>{_e(caption)}</caption>" if caption else ""
    return (
        f'<div class="scroll"><table class="sortable">{cap}<thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table></div>"
    )


def _leaderboard_table(rows: list[dict[str, Any]]) -> str:
    metric = rows[0]["metric"]
    headers = [
        "rank",
        "extractor",
        f"{metric} mean",
        "sd",
        "95% CI",
        "p vs best",
        "Holm p",
        "targets +/−",
        "sign p",
        "repeats × folds",
        "code",
        "config",
        "plan",
        "date",
        "device",
        "precision",
        "run",
    ]
    body = []
    for r in rows:
        targets = (
            f"{r['targets_better']}/{r['targets_worse']}"
            if r["targets_better"] is not None
            else "–"
        )
        cells = [
            _cell(str(r["rank"]), r["rank"], True),
            _cell(r["extractor"]),
            _cell(fmt(r["mean"]), r["mean"], True),
            _cell(fmt(r["std"]), r["std"], True),
            _cell(f"{fmt(r['ci95_low'])} – {fmt(r['ci95_high'])}", r["ci95_low"], True),
            _cell(fmt_p(r["p_vs_best"]), r["p_vs_best"], True),
            _cell(fmt_p(r["p_holm_vs_best"]), r["p_holm_vs_best"], True),
            _cell(targets, r["targets_better"], True),
            _cell(fmt_p(r["sign_test_p"]), r["sign_test_p"], True),
            _cell(f"{r['repeats']} × {r['folds']}", r["repeats"] * r["folds"], True),
            _cell(r["code_version"]),
            _cell(r["config_hash"]),
            _cell(r["plan_id"]),
            _cell(r["date"]),
            _cell(r["device"]),
            _cell(r["precision"]),
            _cell(r["run_id"]),
        ]
        cls = ' class="best"' if r["rank"] == 1 else ""
        body.append(f"<tr{cls}>{''.join(cells)}</tr>")
    return _table(headers, body)


def _targets_table(d: dict[str, Any]) -> str:
    names, kind = d["extractors"], d["target_kind"]
    headers = [kind, *names]
    if len(names) >= 2 and names[1] in d["versus_best"]:
        headers += [f"{names[1]} − {names[0]}", "p", "Holm p", "BH q"]
    first = d["versus_best"].get(names[1], {}) if len(names) >= 2 else {}
    vs = {row["target"]: row for row in first.get("targets", [])}
    body = []
    for row in d["targets"]:
        cells = [_cell(row["target"])]
        cells += [_cell(fmt(row[n]), row[n], True) for n in names]
        if len(headers) > len(names) + 1:
            v = vs.get(row["target"], {})
            md = v.get("mean_difference")
            cells += [
                _cell(fmt(md), md, True),
                _cell(fmt_p(v.get("p")), v.get("p"), True),
                _cell(fmt_p(v.get("p_holm")), v.get("p_holm"), True),
                _cell(fmt_p(v.get("p_bh")), v.get("p_bh"), True),
            ]
        body.append(f"<tr>{''.join(cells)}</tr>")
    return _table(headers, body, f"per-{kind} {d['metric']}, mean over repeats")


def _versus_list(d: dict[str, Any]) -> str:
    kind, items = d["target_kind"], []
    for name, v in d["versus_best"].items():
        if not v.get("available"):
            items.append(f"<li>{_e(name)} vs {_e(d['best'])}: {_e(v.get('note', ''))}</li>")
            continue
        s = v["sign_test"]
        items.append(
            f"<li><b>{_e(name)}</b> vs <b>{_e(d['best'])}</b>: better on {v['n_improved']}, worse"
            f" on {v['n_worse']} of {v['n_targets']} {plural(kind)} (exact sign test p ="
            f" {fmt_p(s['p_value'] if s else None)}); significant after Holm:"
            f" {v['n_better_holm']} better / {v['n_worse_holm']} worse; after BH:"
            f" {v['n_better_bh']} / {v['n_worse_bh']} ({_e(v['test'])} test per {kind}).</li>"
        )
    for name, c in d.get("significance", {}).items():
        items.append(
            f"<li>{_e(name)}: {c['n_significant']} of {c['n_targets']} {plural(kind)} significant"
            f" ({_e(c['method'])}); uncorrected: {c['n_significant_uncorrected']}.</li>"
        )
    return f"<ul>{''.join(items)}</ul>" if items else ""


def _figure_html(f: FigureFile) -> str:
    raw = f.png.read_bytes()
    # PNG header: width and height are big-endian uint32 at bytes 16-24 of the IHDR chunk.
    width, height = int.from_bytes(raw[16:20], "big"), int.from_bytes(raw[20:24], "big")
    wide = ' class="wide"' if width > 1.6 * height else ""  # wide plots get a full row
    data = base64.b64encode(raw).decode("ascii")
    return (
        f'<figure{wide} id="{_e(f.task)}-{_e(f.name)}"><img alt="{_e(f.caption)}"'
        f' width="{width}" height="{height}"'
        f' src="data:image/png;base64,{data}"><figcaption>{_e(f.caption)}'
        f" Files: <code>{_e(f.png.name)}</code>, <code>{_e(f.svg.name)}</code>.</figcaption>"
        "</figure>"
    )


def render_html(lb: Leaderboard, figs: Sequence[FigureFile], title: str) -> str:
    from histobench import __version__

    now = datetime.now(UTC).isoformat(timespec="seconds")
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body><main>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="meta">histobench {_e(__version__)} · generated {_e(now)} ·'
        f" {len(lb.rows)} run(s) on {len(lb.details)} task(s). Click a column header to sort.</p>",
    ]
    if not lb.rows:
        parts.append(
            "<p>No runs stored yet: try <code>bench demo</code> or <code>bench run</code>.</p>"
        )
    for label, d in lb.details.items():
        rows = [r for r in lb.rows if r["group"] == label]
        task = group_slug(label, d)
        parts.append(f'<section id="{_e(task)}"><h2>{_e(label)}</h2>')
        parts.append(
            f'<p class="meta">metric: {_e(d["metric"])} · data: {_e(rows[0]["dataset"])} ·'
            f" best: {_e(d['best'])} · evaluation <code>{_e(d['evaluation_id'])}</code></p>"
        )
        parts.append(_leaderboard_table(rows))
        parts.append(
            f'<p class="note">p vs best: {_e(p_vs_best_note(rows))} Every row of this table has'
            " the same evaluation identity. targets +/−: targets where the extractor beats /"
            " trails the best, with the exact sign test.</p>"
        )
        notes = [f"{r['extractor']}: {r['note']}" for r in rows if r["note"]]
        if notes:
            parts.append("<ul>" + "".join(f"<li>{_e(n)}</li>" for n in notes) + "</ul>")
        task_figs = [f for f in figs if f.task == task]
        if task_figs:
            parts.append('<div class="figs">' + "".join(map(_figure_html, task_figs)) + "</div>")
        if d["targets"]:
            parts.append(f"<h3>Per {_e(d['target_kind'])}</h3>")
            parts.append(_versus_list(d))
            parts.append(_targets_table(d))
        parts.append("</section>")
    parts.append(f"</main><script>{JS}</script></body></html>")
    return "\n".join(parts) + "\n"


# --------------------------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------------------------


def write_report(
    store: ResultsStore,
    out: Path,
    *,
    task: str | None = None,
    runs: list[RunRecord] | None = None,
    title: str = "histobench leaderboard",
) -> Path:
    """Write the HTML report to ``out`` and its figures (PNG + SVG) to ``<out stem>_figures/``."""
    runs = store.latest_runs(task) if runs is None else runs
    lb = build_leaderboard(store, task, runs)
    out = Path(out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise DataError(f"{out}: the HTML report needs a .html file name")
    figure_dir = out.with_name(out.stem + "_figures")
    figs = task_figures(store, lb, runs, figure_dir) if runs else []
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(render_html(lb, figs, title), encoding="utf-8")
    tmp.replace(out)  # a reader never sees half a report
    return out


def default_report_path(task: str | None = None) -> Path:
    from histobench.benchmark import home

    return home.reports_dir() / (f"leaderboard-{task}.html" if task else "leaderboard.html")


def write_demo_report(run_ids: Sequence[str], out: Path | None = None) -> Path:
    """For ``bench demo``: the HTML report of exactly these runs (default
    ``HISTOBENCH_HOME/reports/demo.html``); returns its path."""
    from histobench.benchmark import home

    out = out or home.reports_dir() / "demo.html"
    with ResultsStore(home.results_db()) as store:
        runs = []
        for run_id in run_ids:
            run = store.get_run(run_id)
            if run is None:
                raise DataError(f"run {run_id} is not in the results store {store.path}")
            runs.append(run)
        return write_report(store, out, runs=runs, title="histobench demo (synthetic tiles)")
