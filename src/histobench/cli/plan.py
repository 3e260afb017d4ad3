"""``bench plan export (RUN_ID|PLAN_ID) --out plan.csv``: a stored split plan as CSV."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from histobench.plugins.errors import DataError


def cmd_plan_export(args: argparse.Namespace) -> int:
    from histobench.benchmark import home
    from histobench.benchmark.plans import write_plan_csv
    from histobench.benchmark.store import ResultsStore

    with ResultsStore(home.results_db()) as store:
        plan_id = store.plan_of_run(args.id) or args.id
        plan = store.load_plan(plan_id)
        if plan is None:
            raise DataError(
                f"'{args.id}' is neither a run id nor a plan id in {home.results_db()} "
                "(see `bench leaderboard` or `bench run --json` for ids)"
            )
    rows = write_plan_csv(plan, args.out)
    print(
        f"plan {plan.plan_id} ({plan.repeats}×{plan.folds}, {plan.n_units} units, grouped by "
        f"{plan.grouped_by}): {rows} rows written to {args.out}"
    )
    return 0


def add_plan_parser(sub: Any) -> None:
    p = sub.add_parser("plan", help="export a stored split plan (use it with bench run --plan)")
    actions = p.add_subparsers(dest="plan_command", parser_class=type(p), required=True)
    export = actions.add_parser(
        "export", help="write a run's (or a plan id's) split plan as unit,patient,repeat,fold CSV"
    )
    export.add_argument("id", metavar="RUN_ID|PLAN_ID")
    export.add_argument("--out", type=Path, required=True, help="the CSV file to write")
    export.set_defaults(func=cmd_plan_export)
