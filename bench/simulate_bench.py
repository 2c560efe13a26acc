"""Simulator benchmark: unthrottled `simulate` with 1, 2 and 4 workers, each from the same freshly
seeded `medium` data.

    make bench-simulate                          # 20,000 actions per worker count
    make bench-simulate ACTIONS=50000 WORKERS="1 2 4 8"

Prints, per worker count, actions/s, row changes/s (inserts + updates + deletes, each a change
DMS would carry), the commit latency of one business action (p50, p99) and the conflicts that
were retried.
"""

import argparse
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from machine import machine_line, throwaway_database_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("SECRET_KEY", "benchmark-only-" + "x" * 40)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lakehouse.settings")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("actions", nargs="?", type=int, default=20_000)
    parser.add_argument("--workers", default="1 2 4", help="worker counts, e.g. '1 2 4'")
    args = parser.parse_args()
    throwaway_database_url("bench-simulate")
    import django
    from django.core.management import call_command

    django.setup()
    from core.seeding.seed import seed_all
    from core.simulation.runner import simulate

    call_command("migrate", verbosity=0)
    # History ending a month ago, so that simulated time has room to run.
    now = (datetime.now(UTC) - timedelta(days=30)).replace(microsecond=0)
    print(f"{machine_line()}; {args.actions:,} actions per run on a fresh `medium`")
    print(
        f"{'workers':>7} {'actions/s':>10} {'row changes/s':>14} {'p50 ms':>7} {'p99 ms':>7}  "
        "inserts / updates / deletes, conflicts retried"
    )
    for workers in [int(count) for count in args.workers.split()]:
        seed_all(scale="medium", seed=2026, now=now, clean=True)
        result = simulate(seed=1, rate=0, count=args.actions, workers=workers)
        seconds = result.seconds
        per_op = {
            op: sum(rows for (_, kind), rows in result.changes.items() if kind == op)
            for op in ("insert", "update", "delete")
        }
        actions = sum(result.actions.values())
        print(
            f"{workers:>7} {actions / seconds:>10,.0f} {result.row_changes / seconds:>14,.0f} "
            f"{result.latency_ms(0.5):>7.2f} {result.latency_ms(0.99):>7.2f}  "
            f"{per_op['insert']:,} / {per_op['update']:,} / {per_op['delete']:,}, "
            f"{result.retries:,}"
        )


if __name__ == "__main__":
    main()
