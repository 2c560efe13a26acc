from core.management.arguments import between, renamed
from core.management.seeding_command import SeedCommand
from core.seeding.seed import seed_subscriptions


class Command(SeedCommand):
    help = (
        "Subscribe a share of the customers who have no subscription yet (plans Basic 9.99, "
        "Pro 29.99, Premium 99.99, Enterprise 299.99). Without --share: enterprise 0.35, "
        "mid-market 0.30, small business 0.25."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--share",
            type=between(0, 1),
            help="the share of customers who subscribe, 0 to 1 (default: the tier's)",
        )
        renamed(parser, "--rate", "--share", type=between(0, 1))

    def run(self, *, seed, now, on_rows, share: float | None, **options):
        return seed_subscriptions(rate=share, seed=seed, now=now, on_rows=on_rows)
