import logging
import secrets
import signal
from datetime import UTC, datetime

from django.core.management.base import CommandError
from django.db import connection

from core.capture.record import CAPTURE_FILE
from core.errors import ProjectError, ScenarioError
from core.management.arguments import at_least, between, positive, usage_error
from core.management.base import ProjectCommand
from core.management.live import LiveView
from core.simulation.runner import SimulationResult, simulate
from core.simulation.scenarios import SCENARIOS, run_scenario
from core.storage import file_at, location
from core.verify.manifest import MANIFEST_FILE, write_checkpoint


class Command(ProjectCommand):
    help = (
        "Keep the shop running: sign-ups (some taking out a subscription), browsing sessions, "
        "orders (order, items and purchase events in one transaction) that move on to "
        "processing, completed or cancelled as their time comes, profile edits, price and stock "
        "changes, trials ending, monthly renewals with their invoices, invoices sent, paid or "
        "going overdue, erasure requests and pruning of old abandoned carts. One business action "
        "per transaction; --workers runs several at once. Ctrl-C or SIGTERM finishes the "
        "current transactions and prints the totals. With --scenario, it runs named stress "
        "scenarios instead (--scenario list)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--rate",
            type=at_least(0.0, float),
            default=5.0,
            help="actions per second in all (default 5; 0 = as fast as possible)",
        )
        parser.add_argument(
            "--count", type=at_least(1), help="stop after this many actions (default: no limit)"
        )
        parser.add_argument(
            "--duration",
            type=positive(),
            help="stop after this many seconds (default: at Ctrl-C or SIGTERM)",
        )
        parser.add_argument(
            "--seed",
            type=int,
            help="random seed (default: a random one, printed); the same seed and --count on "
            "the same data, unthrottled with one worker, make the same changes",
        )
        parser.add_argument(
            "--tenant", help="focus on one tenant, by slug or id (default: every tenant)"
        )
        parser.add_argument(
            "--speedup",
            type=positive(),
            default=1.0,
            help="simulated time runs this many times faster than wall time, never past now "
            "(default 1)",
        )
        parser.add_argument(
            "--workers",
            type=between(1, 64, int),
            default=1,
            help="processes running actions at once, each on its own connection (default 1)",
        )
        parser.add_argument(
            "--scenario",
            help="instead of the shop's day: run named stress scenarios (comma-separated, or "
            "`all`); `--scenario list` says what each tests (default: the shop's day)",
        )
        parser.add_argument(
            "--scenario-size",
            type=positive(),
            default=1.0,
            help="scale the scenarios' row counts (default 1: e.g. 100,000 rows in one "
            "transaction)",
        )
        parser.add_argument(
            "--manifest",
            metavar="FILE",
            help="with --scenario: after each scenario, add the source's state to the expected "
            "results, the manifest of the capture taking the changes (CAPTURE/manifest.json, on "
            "disk or S3; default: none)",
        )

    def handle(
        self, *args, rate, count, duration, seed, tenant, speedup, workers, verbosity, **options
    ):
        if options["scenario"]:
            return self.scenarios(options["scenario"], seed, options)
        if options["manifest"]:
            raise usage_error("--manifest goes with --scenario")
        seed = secrets.randbelow(2**31) if seed is None else seed
        tenant_id = self.tenant_id(tenant) if tenant else None
        stopping = []
        previous = {
            sig: signal.signal(sig, lambda *_: stopping.append(True))
            for sig in (signal.SIGINT, signal.SIGTERM)
        }
        self.stderr.style_func = None  # progress and notes, not errors: no red on a terminal
        view = LiveView(
            self.stderr,
            logging.getLogger("lakehouse.simulate"),
            service=count is None and duration is None,
        )
        self.view = view if verbosity >= 1 else None
        try:
            result = simulate(
                seed=seed,
                rate=rate,
                count=count,
                duration=duration,
                speedup=speedup,
                tenant_id=tenant_id,
                workers=workers,
                should_stop=lambda: bool(stopping),
                on_progress=self.progress if self.view else None,
                on_fault=self.view.note if self.view else None,
            )
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            view.clear()
        if verbosity >= 1:
            self.report(result, seed, count, rate, workers, speedup)

    def scenarios(self, chosen: str, seed: int | None, options: dict) -> None:
        if chosen == "list":
            for scenario in SCENARIOS.values():
                self.stdout.write(f"{scenario.name}\n  tests: {scenario.pitfall}\n"
                                  f"  a naive pipeline: {scenario.naive}")  # fmt: skip
            return
        names = list(SCENARIOS) if chosen == "all" else [n.strip() for n in chosen.split(",")]
        unknown = [name for name in names if name not in SCENARIOS]
        if unknown:
            raise usage_error(
                f"no scenario {unknown[0]!r}: choose from {', '.join(SCENARIOS)} or all "
                "(--scenario list says what each tests)"
            )
        try:
            folder = self.capture_of(options["manifest"]) if options["manifest"] else None
            is_capture = folder is None or folder.exists(CAPTURE_FILE)
        except ProjectError as error:
            raise usage_error(f"--manifest: {error}") from None
        if not is_capture:
            raise usage_error(
                f"{folder} is not a capture (no {CAPTURE_FILE}): run cdc_tail --output {folder} "
                "first, so that the manifest belongs to it"
            )
        seed = 1 if seed is None else seed
        for name in names:
            try:
                changed = run_scenario(name, seed=seed, size=options["scenario_size"])
            except ScenarioError as error:
                raise ScenarioError(f"{name}: {error}") from None
            line = f"{name}: {changed:,} row changes"
            if folder is not None:
                with connection.cursor() as cursor:
                    taken = write_checkpoint(folder, cursor, name)
                line += f"; expected results at {taken['lsn']} in {folder.uri(MANIFEST_FILE)}"
            self.stdout.write(line)
        self.stdout.write(f"(repeat with --seed {seed} on the same data)")

    def capture_of(self, manifest: str):
        """The capture a manifest file belongs to: the folder it is in. A folder given instead
        (the old meaning of --manifest) is taken for its manifest.json, with a warning."""
        where = location(manifest)
        if where.exists(CAPTURE_FILE):
            self.stderr.write(
                f"warning: --manifest now takes the file: {where.uri(MANIFEST_FILE)}; a folder "
                "goes in the next release"
            )
            return where
        folder, name = file_at(manifest)
        if name != MANIFEST_FILE:
            raise usage_error(f"--manifest: a capture's manifest is named {MANIFEST_FILE}")
        return folder

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
        rate = sum(result.actions.values()) / (result.seconds or 1e-9)
        per_op = {
            op: sum(n for (_, o), n in result.changes.items() if o == op)
            for op in ("insert", "update", "delete")
        }
        self.view.figures(
            f"{rate:6.1f} actions/s  inserts {per_op['insert']:,}  updates {per_op['update']:,}  "
            f"deletes {per_op['delete']:,}"
        )

    def report(
        self,
        result: SimulationResult,
        seed: int,
        count: int | None,
        rate: float,
        workers: int,
        speedup: float,
    ) -> None:
        actions = sum(result.actions.values())
        for (table, op), rows in sorted(result.changes.items()):
            self.stdout.write(f"{table:<18} {op:<7} {rows:>9,}")
        seconds = result.seconds or 1e-9
        p50, p99 = result.latency_ms(0.5), result.latency_ms(0.99)
        until = result.simulated_until
        self.stdout.write(
            f"{actions:,} actions, {result.row_changes:,} row changes in {result.seconds:.1f}s "
            f"({actions / seconds:,.1f} actions/s, {result.row_changes / seconds:,.0f} "
            f"row changes/s); commit latency p50 {p50:.1f} ms, p99 {p99:.1f} ms"
        )
        if until:
            self.stdout.write(simulated_time(until, result.started_at, speedup))
        if result.retries or result.abandoned or result.reconnects:
            self.stdout.write(
                f"{result.retries:,} actions tried again after a conflict, "
                f"{result.abandoned:,} given up, {result.reconnects:,} reconnections"
            )
        repeat = f"--seed {seed}" + (f" --count {count} --rate 0" if count and not rate else "")
        note = "" if workers == 1 else " (with --workers 1)"
        self.stdout.write(
            f"seed {seed}: on the same starting data, {repeat}{note} repeats this run"
        )


def simulated_time(until: datetime, started: datetime, speedup: float) -> str:
    """Where simulated time stands, and, when it trails the clock, why: it carries on from
    the newest data (a seed's --now, the last run's end) and never passes the clock."""
    line = f"simulated time now {until:%Y-%m-%d %H:%M:%S} UTC"
    behind = (datetime.now(UTC) - until).total_seconds()
    if behind < 60:
        return line
    return (
        f"{line}, {duration_text(behind)} behind the clock: it went on from the newest data "
        f"({started:%Y-%m-%d %H:%M:%S}) at {speedup:g}x the wall clock, and never passes it "
        "(--speedup catches up faster)"
    )


def duration_text(seconds: float) -> str:
    minutes = seconds / 60
    if minutes < 120:
        return f"{minutes:.0f} min"
    hours = minutes / 60
    return f"{hours:.0f} h" if hours < 48 else f"{hours / 24:.0f} days"
