from django.core.management.base import CommandError

from core.management.seeding_command import SeedCommand
from core.seeding import seed_products


class Command(SeedCommand):
    help = (
        "Add products to every tenant's catalogue (categories weighted by the tenant's industry, "
        "prices $5-$2,000). Without --per-tenant: enterprise 150-200, mid-market 100-150, "
        "small business 50-80."
    )

    def add_arguments(self, parser):
        parser.add_argument("--per-tenant", type=int, help="products to add to each tenant")

    def run(self, *, seed, now, on_rows, per_tenant: int | None, **options):
        if per_tenant is not None and per_tenant < 1:
            raise CommandError("--per-tenant must be at least 1")
        return seed_products(per_tenant=per_tenant, seed=seed, now=now, on_rows=on_rows)
