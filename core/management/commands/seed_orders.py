from core.management.arguments import positive
from core.management.seeding_command import SeedCommand
from core.seeding.seed import seed_orders


class Command(SeedCommand):
    help = (
        "Add orders with 1-5 items to every customer (needs customers and products). The mean is "
        "for a customer who signed up at an average time; recent signups get fewer. Without "
        "--per-customer: enterprise 7, mid-market 5, small business 3.5."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--per-customer",
            type=positive(),
            help="mean orders per customer (default: the tier's, 3.5 to 7)",
        )

    def run(self, *, seed, now, on_rows, per_customer: float | None, **options):
        return seed_orders(per_customer=per_customer, seed=seed, now=now, on_rows=on_rows)
