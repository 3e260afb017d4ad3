"""The HTML report: self-contained, figures as files, and checked in a real headless Chromium
(no console errors, tables and figures present, sorting works, no sideways scroll on a phone,
screenshots written)."""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path

import pytest
from PIL import Image

from histobench.leaderboard.report import write_demo_report, write_report
from tests.leaderboard.cdp import Browser, find_chromium
from tests.leaderboard.helpers import expression_run, mutation_run, open_store, patient_plan

# Where the screenshots go: HISTOBENCH_SCREENSHOTS if set (to look at them), else pytest's tmp.
SHOTS_ENV = "HISTOBENCH_SCREENSHOTS"


def _all_tasks_report(home: Path) -> Path:
    """Real crc-tissue demo runs (already in ``home``) plus LUAD-shaped runs: every figure."""
    plan = patient_plan(5, 3)
    with open_store(home) as store:
        for i, (name, skill) in enumerate((("ftx", 0.5), ("imgnet", 0.35), ("rand", 0.1))):
            expression_run(store, f"e{i}", name, plan, skill, f"2026-01-01T00:00:0{i}", seed=i)
        mutation_run(store, "m1", "ftx", plan, 0.9, "2026-01-01T00:00:01", seed=1)
        mutation_run(store, "m2", "imgnet", plan, 0.6, "2026-01-01T00:00:02", seed=2)
        return write_report(store, home / "reports" / "board.html")


def test_report_is_self_contained_and_writes_figure_files(demo_home: Path) -> None:
    out = _all_tasks_report(demo_home)
    text = out.read_text(encoding="utf-8")
    figdir = out.with_name("board_figures")
    expected = {
        "crc-tissue-figure2", "crc-tissue-figure3", "luad-expression-figure2",
        "luad-expression-figure4", "luad-expression-figure5", "luad-expression-cd",
        "luad-mutation-figure2", "luad-mutation-figure6",
    }  # fmt: skip
    for stem in expected:
        assert (figdir / f"{stem}.png").is_file() and (figdir / f"{stem}.svg").is_file(), stem
        assert f'id="{stem}"' in text
    assert text.count('src="data:image/png;base64,') == len(expected)
    # Nothing fetched from anywhere: no external scripts, styles, images or fonts.
    assert not re.search(r"""(src|href)\s*=\s*["'](https?:|//)""", text)
    assert "<link" not in text and "@import" not in text and "url(" not in text
    assert text.count('<table class="sortable">') == 6  # leaderboard + per-target, 3 tasks
    assert '<meta name="viewport"' in text


def test_write_demo_report(demo_home: Path, demo_records) -> None:
    ids = [r["run_id"] for r in demo_records.values()]
    path = write_demo_report(ids)
    assert path == demo_home / "reports" / "demo.html"
    text = path.read_text(encoding="utf-8")
    assert all(i in text for i in ids) and "crc-tissue-figure3" in text


def test_leaderboard_html_command(bench, demo_home: Path) -> None:
    code, out, err = bench("leaderboard", "--format", "html")
    assert code == 0, err
    path = demo_home / "reports" / "leaderboard.html"
    assert out.strip() == f"wrote {path}" and path.is_file()
    code, _, err = bench("leaderboard", "--format", "html", "--out", demo_home / "x.txt")
    assert code != 0 and ".html" in err


def _shot(browser: Browser, path: Path, full: bool) -> Path:
    data = browser.page("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": full})
    path.write_bytes(base64.b64decode(data["data"]))
    with Image.open(path) as im:
        assert im.size[0] > 300 and im.size[1] > 300
    return path


def test_report_in_headless_chromium(demo_home: Path, tmp_path: Path) -> None:
    binary = find_chromium()
    if binary is None:
        pytest.skip("no chromium binary on PATH (Debian: apt-get install chromium)")
    report = _all_tasks_report(demo_home)
    shots = Path(os.environ.get(SHOTS_ENV, tmp_path))
    shots.mkdir(parents=True, exist_ok=True)
    browser = Browser(binary, tmp_path / "profile")
    try:
        for domain in ("Runtime.enable", "Log.enable", "Page.enable"):
            browser.page(domain)
        browser.page(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False},
        )
        browser.page("Page.navigate", {"url": report.as_uri()})
        browser.wait_event("Page.loadEventFired")
        ev = browser.evaluate
        assert ev("document.querySelectorAll('table.sortable').length") == 6
        assert ev("document.querySelectorAll('section h2').length") == 3
        sizes = ev("Array.from(document.images).map(i => [i.complete, i.naturalWidth])")
        assert len(sizes) == 8 and all(done and w > 100 for done, w in sizes)

        # Sort the crc-tissue per-class table by its first extractor column, both ways.
        table = "document.querySelectorAll('#crc-tissue table.sortable')[1]"
        col = f"Array.from({table}.tBodies[0].rows).map(r => Number(r.cells[1].dataset.sort))"
        before = ev(col)
        ev(f"{table}.tHead.rows[0].cells[1].click()")
        assert ev(col) == sorted(before)
        assert ev(f"{table}.tHead.rows[0].cells[1].getAttribute('aria-sort')") == "ascending"
        ev(f"{table}.tHead.rows[0].cells[1].click()")
        assert ev(col) == sorted(before, reverse=True)
        # Text column (the class name) sorts alphabetically.
        names = f"Array.from({table}.tBodies[0].rows).map(r => r.cells[0].textContent)"
        ev(f"{table}.tHead.rows[0].cells[0].click()")
        assert ev(names) == sorted(ev(names))
        desktop = _shot(browser, shots / "report-desktop.png", full=True)

        # A phone: the page itself must not scroll sideways (wide tables scroll in their box).
        browser.page(
            "Emulation.setDeviceMetricsOverride",
            {"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": True},
        )
        assert ev("document.documentElement.scrollWidth <= window.innerWidth + 1")
        assert ev("Array.from(document.images).every(i => i.getBoundingClientRect().width <= 390)")
        phone = _shot(browser, shots / "report-phone.png", full=False)
        errors = browser.console_errors()
    finally:
        browser.close()
    assert errors == []
    assert desktop.is_file() and phone.is_file()
