from core.management.seeding_command import SeedCommand
from core.seeding.seed import seed_invoices


class Command(SeedCommand):
    help = (
        "Raise the missing monthly invoices of every subscription, one per billing month while it "
        "was billable, with statuses that agree with their dates."
    )

    def run(self, *, seed, now, on_rows, **options):
        return seed_invoices(seed=seed, now=now, on_rows=on_rows)
