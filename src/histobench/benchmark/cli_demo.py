"""``bench demo``: synthetic data, several extractors, a leaderboard — the machinery end to end."""

from __future__ import annotations

import argparse
from typing import Any


def cmd_demo(args: argparse.Namespace) -> int:
    from histobench.benchmark import home
    from histobench.benchmark.config import CVConfig, RunConfig
    from histobench.benchmark.runner import run_benchmark
    from histobench.benchmark.store import ResultsStore
    from histobench.leaderboard.tables import leaderboard_rows, to_markdown

    run_ids = []
    for extractor in ("effnet-lite0", "random-init"):
        config = RunConfig(
            extractor=extractor,
            task="crc-tissue",
            dataset="demo",
            dataset_options={"tiles_per_class": args.tiles_per_class},
            cv=CVConfig(repeats=args.repeats, folds=args.folds),
            seed=args.seed,
            device=args.device,
        )
        run_ids.append(run_benchmark(config, "bench demo")["run_id"])
    with ResultsStore(home.results_db()) as store:
        runs = [r for r in (store.get_run(i) for i in run_ids) if r is not None]
    print(to_markdown(leaderboard_rows(runs)))
    print("Demo tiles are synthetic: these numbers show the machinery working, not biology.")
    return 0


def add_demo_parser(sub: Any) -> None:
    p = sub.add_parser("demo", help="generate demo tiles and compare two extractors")
    p.add_argument("--tiles-per-class", type=int, default=24, dest="tiles_per_class")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.set_defaults(func=cmd_demo)
