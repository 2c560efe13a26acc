from core.management.arguments import at_least
from core.management.seeding_command import SeedCommand
from core.seeding.seed import seed_products


class Command(SeedCommand):
    help = (
        "Add products to every tenant's catalogue (categories weighted by the tenant's industry, "
        "prices $5-$2,000). Without --per-tenant: enterprise 150-200, mid-market 100-150, "
        "small business 50-80."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--per-tenant",
            type=at_least(1),
            help="products to add to each tenant (default: the tier's catalogue size)",
        )

    def run(self, *, seed, now, on_rows, per_tenant: int | None, **options):
        return seed_products(per_tenant=per_tenant, seed=seed, now=now, on_rows=on_rows)
