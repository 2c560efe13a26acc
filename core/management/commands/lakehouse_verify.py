from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from core.lake.capture_files import LakeError
from core.lake.verify import verify_lake
from core.management.reconciling import fail_if_different, write_report


class Command(BaseCommand):
    help = (
        "Reconcile the Delta or Iceberg tables lakehouse_apply built from a capture with the live "
        "PostgreSQL tables: row counts per table and tenant, hashes per key range, and a "
        "row-level diff of the ranges that differ. Run it when the capture has caught up "
        "(cdc_tail drained, nothing writing). Exit status 1 on any difference."
    )

    def add_arguments(self, parser):
        parser.add_argument("--warehouse", required=True, help="lakehouse_apply's --warehouse")

    def handle(self, *args, warehouse, **options):
        try:
            reports = verify_lake(connection.get_connection_params(), Path(warehouse))
        except LakeError as error:
            raise CommandError(str(error)) from None
        for report in reports.values():
            tenants = [
                f"tenant {tenant}: {lake:,} in the lake, {live:,} live"
                for tenant, (lake, live) in list(report.tenants.items())[:5]
            ]
            write_report(
                self.stdout.write, report.table, held="in the lake", same=report.same, notes=tenants
            )
        fail_if_different(sum(not report.same for report in reports.values()))
        self.stdout.write("lakehouse = source")
