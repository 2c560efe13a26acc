from core.management.arguments import positive
from core.management.seeding_command import SeedCommand
from core.seeding.seed import seed_events


class Command(SeedCommand):
    help = (
        "Add clickstream sessions to every customer: a purchase session for each order that has "
        "no purchase event yet, and browsing sessions (bounces, browsing, abandoned carts and "
        "checkouts) up to the event budget. Without --per-customer: enterprise 70, mid-market 55, "
        "small business 35."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--per-customer",
            type=positive(),
            help="mean events per customer (default: the tier's budget, 35 to 70)",
        )

    def run(self, *, seed, now, on_rows, per_customer: float | None, **options):
        return seed_events(per_customer=per_customer, seed=seed, now=now, on_rows=on_rows)
