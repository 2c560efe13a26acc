import argparse

from core.generation.profiles import scale_factor
from core.management.arguments import at_least
from core.management.seeding_command import SeedCommand
from core.seeding.seed import CUSTOMERS_PER_BATCH, plan_all, seed_all


def scale(text: str) -> str:
    """--scale's value, checked as it is parsed: a bad one is a usage error (exit status 2)."""
    try:
        scale_factor(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


class Command(SeedCommand):
    help = (
        "Seed a whole world in one transaction: 8-10 tenants (2 enterprise, 3 mid-market, 3-5 "
        "small business) with products, customers, orders, events, subscriptions and invoices. "
        "A failed or interrupted run leaves the database as it was."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--scale",
            type=scale,
            default="small",
            help="small, medium, large, or a positive multiple of large such as 5 (default small)",
        )
        parser.add_argument(
            "--clean",
            action="store_true",
            help="first DELETE all existing data, children first, in the same transaction. "
            "DELETE rather than TRUNCATE: DMS does not capture TRUNCATE.",
        )
        parser.add_argument(
            "--plan",
            "--dry-run",
            action="store_true",
            dest="plan",
            help="print the exact row counts per table this scale and seed give; write nothing",
        )
        parser.add_argument(
            "--batch-size",
            type=at_least(1),
            default=CUSTOMERS_PER_BATCH,
            help=f"customers generated per batch (default {CUSTOMERS_PER_BATCH}); "
            "changes memory use, never the data",
        )

    def run(
        self,
        *,
        seed,
        now,
        on_rows,
        on_step,
        scale: str,
        clean: bool,
        plan: bool,
        batch_size: int,
        **options,
    ):
        if plan:
            self.stdout.write(f"Plan for --scale {scale} --seed {seed} (nothing written):")
            return plan_all(scale=scale, seed=seed, now=now)
        return seed_all(
            scale=scale,
            seed=seed,
            now=now,
            clean=clean,
            on_rows=on_rows,
            on_step=on_step,
            customers_per_batch=batch_size,
        )
