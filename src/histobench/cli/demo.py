"""``bench demo``: synthetic data, several extractors, a leaderboard — the machinery end to end.

Steps: fine-tune FTX on the demo's *train* tiles (disjoint from the evaluation tiles), score
``effnet-lite0``, ``ftx`` and ``random-init`` on ``crc-tissue`` with one shared split plan, score
``effnet-lite0`` and ``random-init`` on both LUAD tasks of a synthetic slide cohort with planted
signal, then print the leaderboards and write the HTML report. The data are synthetic: the numbers show the
machinery working, not biology.
"""

from __future__ import annotations

import argparse
from typing import Any

from histobench.benchmark.progress import stderr_console

DEMO_INPUT_SIZE = 64


def cmd_demo(args: argparse.Namespace) -> int:
    from histobench.benchmark import home
    from histobench.benchmark.config import CVConfig, RunConfig
    from histobench.benchmark.runner import run_benchmark
    from histobench.benchmark.store import ResultsStore
    from histobench.leaderboard.report import write_demo_report
    from histobench.leaderboard.tables import build_leaderboard

    # Every extractor sees the tiles at the fine-tune's input size, so the comparison is fair
    # (and the demo fast on a laptop CPU).
    size = {"input_size": DEMO_INPUT_SIZE}
    extractors: list[tuple[str, dict[str, Any]]] = [("effnet-lite0", size)]
    if not args.no_finetune:
        from histobench.cli.demo_ftx import demo_finetune, demo_recipe

        stderr_console.print("[bold]fine-tuning FTX on the demo's training tiles[/]")
        tuned = demo_finetune(
            tiles_per_class=args.tiles_per_class,
            device=args.device,
            recipe=demo_recipe(input_size=DEMO_INPUT_SIZE, seed=args.seed),
        )
        extractors.append(("ftx", {"weights": str(tuned.out)}))
    extractors.append(("random-init", size))

    jobs = [("crc-tissue", name, opts, {"tiles_per_class": args.tiles_per_class})
            for name, opts in extractors]  # fmt: skip
    if not args.no_luad:
        # The synthetic LUAD cohort: slides tiled, normalised and embedded; patients pooled.
        for task in ("luad-expression", "luad-mutation"):
            jobs += [(task, name, opts, {}) for name, opts in extractors if name != "ftx"]
    run_ids = []
    for task, extractor, options, dataset_options in jobs:
        config = RunConfig(
            extractor=extractor,
            extractor_options=options,
            task=task,
            dataset="demo",
            dataset_options=dataset_options,
            cv=CVConfig(repeats=args.repeats, folds=args.folds),
            seed=args.seed,
            device=args.device,
        )
        run_ids.append(run_benchmark(config, "bench demo")["run_id"])
    with ResultsStore(home.results_db()) as store:
        runs = [r for r in (store.get_run(i) for i in run_ids) if r is not None]
        print(build_leaderboard(store, runs=runs).markdown())
    print("Demo data are synthetic: these numbers show the machinery working, not biology.")
    print(f"HTML report: {write_demo_report(run_ids)}")
    return 0


def add_demo_parser(sub: Any) -> None:
    p = sub.add_parser("demo", help="synthetic data, three extractors, leaderboard and report")
    p.add_argument("--tiles-per-class", type=int, default=24, dest="tiles_per_class")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument(
        "--no-finetune",
        action="store_true",
        dest="no_finetune",
        help="skip fine-tuning FTX (faster; compares effnet-lite0 with random-init only)",
    )
    p.add_argument(
        "--no-luad",
        action="store_true",
        dest="no_luad",
        help="skip the synthetic LUAD cohort (slides → patients → expression and mutation)",
    )
    p.set_defaults(func=cmd_demo)
