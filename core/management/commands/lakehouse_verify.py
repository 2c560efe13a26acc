from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from core.errors import ProjectError
from core.management.arguments import usage_error
from core.management.reconciling import fail_if_different, write_report
from core.storage import location
from core.storage.registry import record_verdict
from core.verify.lake import verify_lake, verify_manifest


class Command(BaseCommand):
    help = (
        "Reconcile the Delta or Iceberg tables lakehouse_apply built from a capture with the live "
        "PostgreSQL tables: row counts per table and tenant, hashes per key range, and a "
        "row-level diff of the ranges that differ. Run it when the capture has caught up "
        "(cdc_tail drained, nothing writing). With --manifest, check instead any folder of "
        "tables (this project's, or Delta, Iceberg or Parquet tables a pipeline of yours "
        "wrote) against the capture's expected results, without PostgreSQL. Exit status 1 on "
        "any difference."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--warehouse",
            required=True,
            help="lakehouse_apply's --warehouse; with --manifest, any folder of tables (a folder "
            "or s3://BUCKET/PREFIX)",
        )
        parser.add_argument(
            "--manifest",
            metavar="FILE",
            help="a capture's manifest.json (written by simulate --scenario --manifest, or "
            "cdc_tail --manifest), on disk or S3: check the tables against it instead of "
            "PostgreSQL (default: check against PostgreSQL)",
        )
        parser.add_argument(
            "--checkpoint",
            help="with --manifest: the label of the checkpoint to check (default: the last)",
        )

    def handle(self, *args, warehouse, manifest, checkpoint, **options):
        if manifest:
            return self.against_manifest(manifest, warehouse, checkpoint)
        if checkpoint:
            raise usage_error("--checkpoint goes with --manifest")
        try:
            reports = verify_lake(connection.get_connection_params(), warehouse)
        except ProjectError as error:
            raise CommandError(str(error)) from None
        for report in reports.values():
            tenants = [
                f"tenant {tenant}: {lake:,} in the lake, {live:,} live"
                for tenant, (lake, live) in list(report.tenants.items())[:5]
            ]
            write_report(
                self.stdout.write, report.table, held="in the lake", same=report.same, notes=tenants
            )
        differing = [name for name, report in reports.items() if not report.same]
        record_verdict(
            location(warehouse), against="source", same=not differing, differing=differing
        )
        fail_if_different(len(differing))
        self.stdout.write("lakehouse = source")

    def against_manifest(self, manifest: str, folder: str, label: str | None) -> None:
        try:
            report = verify_manifest(manifest, folder, label)
        except ProjectError as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"checkpoint {report.label!r} (source at {report.lsn})")
        for name in report.missing:
            self.stdout.write(f"  {name:<18} MISSING: {folder} has no such table")
        for name, tenants in report.tables.items():
            if not tenants:
                self.stdout.write(f"  {name:<18} same")
                continue
            count = len(tenants)
            self.stdout.write(f"  {name:<18} DIFFERS in {count} tenant{'s' * (count != 1)}")
            for tenant, what in list(tenants.items())[:5]:
                self.stdout.write(f"    tenant {tenant}: {'; '.join(what)}")
        differing = report.missing + [name for name, tenants in report.tables.items() if tenants]
        against = f"manifest checkpoint {report.label!r}"
        record_verdict(location(folder), against=against, same=report.same, differing=differing)
        if not report.same:
            raise CommandError("the tables differ from the manifest", returncode=1)
        self.stdout.write("tables = manifest")
