"""``aicloud export``: stored sweep results as one flat CSV table (BehaviorSpace's table format)."""

from __future__ import annotations

import argparse
from pathlib import Path

from sim.cli import UserError

HELP = "write stored sweep results as a flat CSV table (one row per run x quarter, parameters and seed in every row)"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help=HELP,
                       description="Write a sweep's results as one CSV table: one row per finished run x quarter "
                                   "with the run's id, design point, replicate, label, parameter values and seed, "
                                   "the market columns, and chosen provider columns side by side "
                                   "(<column>[<provider>]).")
    p.add_argument("results", type=Path, help="a sweep's output directory, e.g. results/closed_loop")
    p.add_argument("--csv", action="store_true", help="write CSV (the only format; Parquet is already in the results)")
    p.add_argument("--out", type=Path, help="output file (default: RESULTS/table.csv, or providers.csv with --long)")
    p.add_argument("--provider-columns", default="share_revenue,share_compute,share_tokens,share_customers",
                   metavar="COLS", help="comma-separated provider columns to spread across (default: the four shares; "
                                        "'' for none)")
    p.add_argument("--long", action="store_true",
                   help="one row per run x quarter x provider instead (every provider column)")
    p.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    from sim.experiment.results import ResultsError, SweepResults

    try:
        results = SweepResults(args.results)
        out = args.out or args.results / ("providers.csv" if args.long else "table.csv")
        columns = [c.strip() for c in args.provider_columns.split(",") if c.strip()]
        rows = results.to_csv(out, columns, long=args.long)
    except ResultsError as exc:
        raise UserError(str(exc)) from None
    except (OSError, ValueError) as exc:  # a damaged results directory: a missing or corrupt file (JSON, Parquet)
        raise UserError(f"{args.results}: stored sweep results cannot be read ({type(exc).__name__}: {exc})") from None
    runs = results.runs()
    ok = int((runs["status"] == "ok").sum())
    print(f"wrote {out}: {rows:,} rows from {ok:,} finished runs"
          + (f" ({len(runs) - ok:,} runs not finished or failed are left out)" if ok < len(runs) else ""))
    return 0
