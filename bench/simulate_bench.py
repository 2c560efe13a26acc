"""Simulator benchmark: unthrottled `simulate` on a freshly seeded database.

    make bench-simulate                 # 20,000 actions on the medium scale
    make bench-simulate ACTIONS=50000

Prints actions/s, row changes/s (inserts + updates + deletes, each a change DMS would carry)
and the commit latency of one business action, p50 and p99.
"""

import os
import platform
import sys
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("SECRET_KEY", "benchmark-only-" + "x" * 40)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lakehouse.settings")


def main(actions: int) -> None:
    if not os.environ.get("DATABASE_URL"):
        sys.exit(
            "error: run through `make bench-simulate` (it sets DATABASE_URL to a throwaway server)"
        )
    import django
    from django.core.management import call_command

    django.setup()
    from core.seeding import seed_all
    from core.simulation.runner import simulate

    call_command("migrate", verbosity=0)
    seeded = seed_all(
        scale="medium", seed=2026, now=datetime.fromisoformat("2026-11-01T00:00:00+00:00")
    )
    print(
        f"machine: {os.cpu_count()} cores, {platform.machine()}, "
        f"Python {platform.python_version()}; data: medium scale, {seeded.rows:,} rows"
    )
    result = simulate(seed=1, rate=0, count=actions)
    seconds = result.seconds
    per_op = {
        op: sum(rows for (_, kind), rows in result.changes.items() if kind == op)
        for op in ("insert", "update", "delete")
    }
    print(
        f"{actions:,} actions in {seconds:.1f}s: {actions / seconds:,.0f} actions/s, "
        f"{result.row_changes / seconds:,.0f} row changes/s "
        f"({per_op['insert']:,} inserts, {per_op['update']:,} updates, "
        f"{per_op['delete']:,} deletes)"
    )
    print(
        f"commit latency per action: p50 {result.latency_ms(0.5):.2f} ms, "
        f"p99 {result.latency_ms(0.99):.2f} ms"
    )


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
