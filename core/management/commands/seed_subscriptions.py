from django.core.management.base import CommandError

from core.management.seeding_command import SeedCommand
from core.seeding import seed_subscriptions


class Command(SeedCommand):
    help = (
        "Subscribe a share of the customers who have no subscription yet (plans Basic 9.99, "
        "Pro 29.99, Premium 99.99, Enterprise 299.99). Without --rate: enterprise 0.35, "
        "mid-market 0.30, small business 0.25."
    )

    def add_arguments(self, parser):
        parser.add_argument("--rate", type=float, help="share of customers, 0 to 1")

    def run(self, *, seed, now, on_rows, rate: float | None, **options):
        if rate is not None and not 0 <= rate <= 1:
            raise CommandError(f"--rate must be between 0 and 1, not {rate}")
        return seed_subscriptions(rate=rate, seed=seed, now=now, on_rows=on_rows)
