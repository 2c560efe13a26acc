from django.core.management.base import CommandError

from core.management.seeding_command import SeedCommand
from core.seeding import seed_tenants


class Command(SeedCommand):
    help = "Add tenants: the first 2 enterprise, the next 3 mid-market, the rest small business."

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, default=8, help="how many tenants (default 8)")

    def run(self, *, seed, now, on_rows, count: int, **options):
        if count < 1:
            raise CommandError("--count must be at least 1")
        return seed_tenants(count=count, seed=seed, now=now, on_rows=on_rows)
