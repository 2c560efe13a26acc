from core.management.arguments import at_least
from core.management.seeding_command import SeedCommand
from core.seeding.seed import seed_customers


class Command(SeedCommand):
    help = (
        "Add customers to every tenant, signed up over the 180 days before --now. Without "
        "--per-tenant each tenant gets its tier's size (enterprise 1,000-2,000, mid-market "
        "500-1,000, small business 100-300)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--per-tenant",
            type=at_least(1),
            help="customers to add to each tenant (default: the tier's size)",
        )

    def run(self, *, seed, now, on_rows, per_tenant: int | None, **options):
        return seed_customers(per_tenant=per_tenant, seed=seed, now=now, on_rows=on_rows)
