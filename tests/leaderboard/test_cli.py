"""``add_parsers`` plugs into a parser built like ``bench``'s own (one-line usage errors)."""

from __future__ import annotations

import argparse

import pytest

from histobench.cli import main as bench_cli
from histobench.cli.leaderboard import add_parsers, cmd_compare, cmd_leaderboard


def _parser() -> argparse.ArgumentParser:
    parser = bench_cli._Parser(prog="bench")
    add_parsers(parser.add_subparsers(dest="command", parser_class=bench_cli._Parser))
    return parser


def test_add_parsers_registers_both_commands_with_defaults() -> None:
    args = _parser().parse_args(["compare", "--task", "t", "--extractors", "a,b"])
    assert args.func is cmd_compare
    assert (args.test, args.blocks, args.json, args.seed) == ("auto", "none", False, 0)
    assert args.evaluation is None
    args = _parser().parse_args(["leaderboard", "--format", "html"])
    assert args.func is cmd_leaderboard and args.out is None and args.task is None


def test_bad_choices_are_one_line_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        _parser().parse_args(["compare", "--task", "t", "--extractors", "a,b", "--test", "t"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--test" in err and "nb-ttest" in err
    with pytest.raises(SystemExit):
        _parser().parse_args(["leaderboard", "--format", "pdf"])
    assert "--format" in capsys.readouterr().err


def test_cv_repeats_are_not_offered_as_friedman_blocks(capsys: pytest.CaptureFixture[str]) -> None:
    """Re-splits of the same items are not independent blocks: ``--blocks repeats`` is a usage
    error naming the choices that are."""
    with pytest.raises(SystemExit) as exc:
        _parser().parse_args(
            ["compare", "--task", "t", "--extractors", "a,b,c", "--blocks", "repeats"]
        )
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--blocks" in err and "targets" in err
