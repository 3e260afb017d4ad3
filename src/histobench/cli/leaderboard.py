"""``bench compare`` and ``bench leaderboard``, registered into the main parser by
``add_parsers(subparsers)``. Each command returns an exit code and raises ``HistobenchError``
subclasses for problems the user can fix (the main CLI prints them as one line)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from histobench.leaderboard.compare import BLOCKS, TESTS
from histobench.plugins.errors import ConfigError

FORMATS = ("md", "csv", "json", "html")


def _print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


def cmd_compare(args: argparse.Namespace) -> int:
    from histobench.benchmark import home
    from histobench.benchmark.store import ResultsStore
    from histobench.leaderboard.compare import compare

    with ResultsStore(home.results_db()) as store:
        result = compare(
            store,
            args.task,
            args.extractors,
            args.test,
            blocks=args.blocks,
            evaluation=args.evaluation,
            figure_dir=home.reports_dir(),
            seed=args.seed,
        )
    if args.json:
        _print_json(result)
    else:
        print(format_comparison(result))
    return 0


def format_comparison(c: dict[str, Any]) -> str:
    """A few human-readable lines for the terminal."""
    from histobench.leaderboard.tables import fmt, fmt_p

    lines = [
        f"{c['task']} ({c['metric']}), plan {c['plan_id']} ({c['repeats']}×{c['folds']}),"
        f" evaluation {c['evaluation_id']}:",
        "  " + ", ".join(f"{e} {fmt(m)}" for e, m in c["means"].items()),
    ]
    if c["test"] == "pairwise":
        return "\n".join(lines + _format_many(c))
    a, b = c["extractors"]
    lines.append(
        f"  {a} − {b} = {fmt(c['difference'])} (95% CI {fmt(c['ci_low'])} to"
        f" {fmt(c['ci_high'])}, {c['ci_of']}); {c['headline_test']}: statistic ="
        f" {fmt(c['statistic'], 3)}, df = {fmt(c['df'], 0)}, p = {fmt_p(c['p_value'])}"
    )
    for key in ("ci_method", "quantity_note", "headline_note", "assumption"):
        if c.get(key):
            lines.append(f"  {key.replace('_', ' ')}: {c[key]}")
    t = c["per_target"]
    if t.get("assumption"):
        lines.append(f"  per target: {t['assumption']}")
    if t.get("available"):
        s = t["sign_test"]
        lines.append(
            f"  per target ({t['test']}): {a} better on {t['n_improved']}, worse on"
            f" {t['n_worse']} of {t['n_targets']}; sign test p ="
            f" {fmt_p(s['p_value'] if s else None)}; significant after Holm"
            f" {t['n_better_holm']}/{t['n_worse_holm']}, after BH"
            f" {t['n_better_bh']}/{t['n_worse_bh']} (better/worse)"
        )
    elif t.get("note"):
        lines.append(f"  per target: {t['note']}")
    return "\n".join(lines)


def _format_many(c: dict[str, Any]) -> list[str]:
    """Three or more extractors: every pair with Holm, then Friedman over targets if asked."""
    from histobench.leaderboard.tables import fmt, fmt_p

    lines = [f"  verdict: {c['verdict']}"]
    for p in c["pairwise"]:
        a, b = p["extractors"]
        lines.append(
            f"  {a} − {b} = {fmt(p['difference'])} (95% CI {fmt(p['ci_low'])} to"
            f" {fmt(p['ci_high'])}), p = {fmt_p(p['p_value'])}, Holm p = {fmt_p(p['p_holm'])}"
        )
    if c["pairwise"] and c["pairwise"][0].get("assumption"):
        lines.append(f"  assumption: {c['pairwise'][0]['assumption']}")
    f = c["friedman"]
    if f:
        ranks = sorted(f["nemenyi"]["average_ranks"].items(), key=lambda kv: kv[1])
        lines.append(
            f"  Friedman chi2 = {fmt(f['statistic'], 3)}, df = {fmt(f['df'], 0)},"
            f" p = {fmt_p(f['p_value'])} ({f['blocking_rule']})"
        )
        lines.append(
            "  average ranks: "
            + ", ".join(f"{e} {r:.2f}" for e, r in ranks)
            + f"; Nemenyi CD = {f['nemenyi']['critical_difference']:.2f}"
        )
    if c["cd_diagram"]:
        lines.append(f"  critical-difference diagram: {c['cd_diagram']}")
    return lines


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from histobench.benchmark import home
    from histobench.benchmark.store import ResultsStore
    from histobench.leaderboard.report import default_report_path, write_report
    from histobench.leaderboard.tables import build_leaderboard

    with ResultsStore(home.results_db()) as store:
        if args.task and not store.latest_runs(args.task):
            raise ConfigError(f"--task {args.task}: no stored runs of this task")
        if args.format == "html":
            out = write_report(store, args.out or default_report_path(args.task), task=args.task)
            print(f"wrote {out}")
            return 0
        lb = build_leaderboard(store, args.task)
    text = {"md": lb.markdown, "csv": lb.csv, "json": lb.json}[args.format]()
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
        print(f"wrote {args.out}")
    else:
        sys.stdout.write(text)
    return 0


def add_parsers(subparsers: Any) -> None:
    """Register ``compare`` and ``leaderboard`` on the main parser's subparsers action."""
    p = subparsers.add_parser(
        "compare", help="paired significance test of stored runs on the same split plan"
    )
    p.add_argument("--task", required=True)
    p.add_argument("--extractors", required=True, help="A,B[,C...]: the latest run of each")
    p.add_argument(
        "--test",
        choices=TESTS,
        default="auto",
        help="auto (default): the test the task chose for its score (luad-expression: jackknife;"
        " otherwise nb-ttest); nb-ttest: corrected resampled t-test on fold scores;"
        " jackknife: patient jackknife of the fold-mean difference from stored predictions;"
        " wilcoxon and permutation: per-repeat scores, treating repeats as independent (stated"
        " in the output); delong: AUC tasks",
    )
    p.add_argument(
        "--blocks",
        choices=BLOCKS,
        default="none",
        help="3+ extractors: every pair is tested with Holm; 'targets' adds Friedman + Nemenyi"
        " with the targets (classes, genes) as blocks (CV repeats are never blocks)",
    )
    p.add_argument(
        "--evaluation",
        default=None,
        metavar="ID",
        help="compare the latest runs of this evaluation identity (a prefix of its id)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the Monte Carlo permutation test")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_compare)

    p = subparsers.add_parser("leaderboard", help="publish stored results (md, csv, json, html)")
    p.add_argument("--task", default=None)
    p.add_argument("--format", choices=FORMATS, default="md")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output file (html default: HISTOBENCH_HOME/reports/leaderboard.html)",
    )
    p.set_defaults(func=cmd_leaderboard)
