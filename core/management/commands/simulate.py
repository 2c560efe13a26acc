import signal
import sys

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from core.simulation.runner import SimulationResult, simulate


class Command(BaseCommand):
    help = (
        "Keep the shop running: sign-ups, browsing sessions, orders (order, items and purchase "
        "events in one transaction) moving from pending to completed or cancelled, profile "
        "edits, price and stock changes, trials converting or lapsing, plan changes and "
        "cancellations, monthly invoices raised and paid, erasure requests and pruning of old "
        "abandoned carts. One business action per transaction. Ctrl-C or SIGTERM finishes the "
        "current transaction and prints the totals."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--rate",
            type=float,
            default=5.0,
            help="actions per second (default 5; 0 = as fast as possible)",
        )
        parser.add_argument("--count", type=int, help="stop after this many actions")
        parser.add_argument("--duration", type=float, help="stop after this many seconds")
        parser.add_argument(
            "--seed", type=int, default=0, help="same seed, count and data: same changes"
        )
        parser.add_argument("--tenant", help="focus on one tenant (slug or id)")
        parser.add_argument(
            "--speedup",
            type=float,
            default=1.0,
            help="simulated time runs this many times faster than wall time",
        )

    def handle(self, *args, rate, count, duration, seed, tenant, speedup, verbosity, **options):
        if rate < 0:
            raise CommandError("--rate must be 0 (as fast as possible) or more")
        if count is not None and count < 1:
            raise CommandError("--count must be at least 1")
        if duration is not None and duration <= 0:
            raise CommandError("--duration must be a positive number of seconds")
        if speedup <= 0:
            raise CommandError("--speedup must be positive")
        tenant_id = self.tenant_id(tenant) if tenant else None
        stopping = []
        previous = {
            sig: signal.signal(sig, lambda *_: stopping.append(True))
            for sig in (signal.SIGINT, signal.SIGTERM)
        }
        live = verbosity >= 1 and sys.stderr.isatty()
        try:
            result = simulate(
                seed=seed,
                rate=rate,
                count=count,
                duration=duration,
                speedup=speedup,
                tenant_id=tenant_id,
                should_stop=lambda: bool(stopping),
                on_progress=self.progress if live else None,
            )
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if live:
            self.stderr.write("")
        if verbosity >= 1:
            self.report(result)

    def tenant_id(self, tenant: str):
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id FROM core_tenant WHERE slug = %s OR id::text = %s", [tenant, tenant]
            )
            row = cursor.fetchone()
        if row is None:
            raise CommandError(f"no tenant {tenant!r}: give a slug or id from core_tenant")
        return row[0]

    def progress(self, result: SimulationResult) -> None:
        rate = sum(result.actions.values()) / result.seconds
        per_op = {
            op: sum(n for (_, o), n in result.changes.items() if o == op)
            for op in ("insert", "update", "delete")
        }
        self.stderr.write(
            f"\r{rate:6.1f} actions/s  inserts {per_op['insert']:,}  updates {per_op['update']:,}  "
            f"deletes {per_op['delete']:,}   ",
            ending="",
        )

    def report(self, result: SimulationResult) -> None:
        actions = sum(result.actions.values())
        for (table, op), rows in sorted(result.changes.items()):
            self.stdout.write(f"{table:<18} {op:<7} {rows:>9,}")
        seconds = result.seconds or 1e-9
        p50, p99 = result.latency_ms(0.5), result.latency_ms(0.99)
        self.stdout.write(
            f"{actions:,} actions, {result.row_changes:,} row changes in {result.seconds:.1f}s "
            f"({actions / seconds:,.1f} actions/s, {result.row_changes / seconds:,.0f} "
            f"row changes/s); commit latency p50 {p50:.1f} ms, p99 {p99:.1f} ms; "
            f"simulated time now {result.simulated_until:%Y-%m-%d %H:%M:%S}"
        )
