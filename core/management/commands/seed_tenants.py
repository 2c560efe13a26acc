from core.management.arguments import at_least
from core.management.seeding_command import SeedCommand
from core.seeding.seed import seed_tenants


class Command(SeedCommand):
    help = "Add tenants: the first 2 enterprise, the next 3 mid-market, the rest small business."

    def add_arguments(self, parser):
        parser.add_argument(
            "--count", type=at_least(1), default=8, help="how many tenants (default 8)"
        )

    def run(self, *, seed, now, on_rows, count: int, **options):
        return seed_tenants(count=count, seed=seed, now=now, on_rows=on_rows)
