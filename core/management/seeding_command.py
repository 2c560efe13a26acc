"""What every seed_* command shares: --seed, --now, progress bars, the summary, clear errors."""

import secrets
import sys
from datetime import UTC, datetime

from django.core.management.base import CommandError
from tqdm import tqdm

from core.management.arguments import usage_error
from core.management.base import ProjectCommand
from core.seeding.loading import GenerationFailed
from core.seeding.seed import SeedResult

# What a person waiting at a terminal is told while each step of a bulk load runs.
STEP_NAMES = {
    "clean": "deleting the existing rows",
    "indexes": "building the indexes",
    "foreign keys": "checking the foreign keys",
    "statistics": "analyzing the tables",
}


def parse_now(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise usage_error(
            f"--now {value!r} is not an ISO date-time: use e.g. 2026-01-31 or 2026-01-31T12:00:00Z"
        ) from None
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    if moment > datetime.now(UTC):
        raise usage_error(
            f"--now {value!r} is in the future: history must end at or before the real time now "
            "(the live simulator carries it on from there)"
        )
    return moment


def non_negative_int(value: str) -> int:
    number = int(value)
    if number < 0:
        raise ValueError
    return number


class SeedCommand(ProjectCommand):
    """Subclasses add their options and implement `run(seed=, now=, on_rows=, on_step=,
    **options)`; `on_rows` and `on_step` report progress, and are None when nobody watches."""

    def create_parser(self, prog_name, subcommand, **kwargs):
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.add_argument(
            "--seed",
            type=int,
            help="random seed; the same seed and --now give the same data "
            "(default: a random one, printed)",
        )
        parser.add_argument(
            "--now",
            help="end of the 180 days of history, ISO 8601, UTC if no zone (default: now)",
        )
        return parser

    def run(self, *, seed: int, now: datetime, on_rows, on_step, **options) -> SeedResult:
        raise NotImplementedError

    def handle(self, *args, seed: int | None, now: str | None, verbosity: int, **options):
        moment = parse_now(now)
        seed = secrets.randbelow(2**31) if seed is None else seed
        bars: dict[str, tqdm] = {}
        show_bars = verbosity >= 1 and sys.stderr.isatty()

        def on_rows(table: str, count: int) -> None:
            if table not in bars:
                bars[table] = tqdm(
                    desc=f"{table:<18}", unit=" rows", position=len(bars), leave=False
                )
            bars[table].update(count)

        def on_step(name: str) -> None:
            # Progress, not an error: unstyled, where the progress bars go.
            self.stderr.write(STEP_NAMES.get(name, name) + "…", style_func=lambda text: text)

        try:
            result = self.run(
                seed=seed,
                now=moment,
                on_rows=on_rows if show_bars else None,
                on_step=on_step if show_bars else None,
                **options,
            )
        except GenerationFailed as error:
            raise CommandError(f"seeding failed and nothing was written: {error}") from None
        finally:
            for bar in bars.values():
                bar.close()
        self.report(result, moment, verbosity)

    def report(self, result: SeedResult, now: datetime, verbosity: int) -> None:
        if verbosity < 1:
            return
        for table, count in result.deleted.items():
            if count:
                self.stdout.write(f"deleted {count:>10,} rows from {table}")
        for table, count in result.counts.items():
            if count or verbosity >= 2:
                self.stdout.write(f"{table:<18} {count:>10,} rows")
        if verbosity >= 2 and result.step_seconds:
            steps = ", ".join(
                f"{name} {seconds:.1f}s" for name, seconds in result.step_seconds.items()
            )
            self.stdout.write(f"around the COPYs: {steps}")
        rate = result.rows / result.seconds if result.seconds else 0.0
        stamp = now.isoformat().replace("+00:00", "Z")
        self.stdout.write(
            f"{result.rows:,} rows in {result.seconds:.1f}s ({rate:,.0f} rows/s); "
            f"seed {result.seed}, now {stamp} (repeat with --seed {result.seed} --now {stamp})"
        )
