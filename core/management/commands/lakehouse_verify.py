from django.db import connection

from core.management.arguments import file_place, place, usage_error
from core.management.base import ProjectCommand
from core.verify.lake import verify_lake, verify_manifest
from core.verify.report import differences_failure, report_lines


class Command(ProjectCommand):
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
            type=place,
            required=True,
            help="lakehouse_apply's --warehouse; with --manifest, any folder of tables (a folder "
            "or s3://BUCKET/PREFIX)",
        )
        parser.add_argument(
            "--manifest",
            type=file_place,
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
        reports = verify_lake(connection.get_connection_params(), warehouse)
        for report in reports.values():
            tenants = [
                f"tenant {tenant}: {lake:,} in the lake, {live:,} live"
                for tenant, (lake, live) in list(report.tenants.items())[:5]
            ]
            lines = report_lines(report.table, held="in the lake", same=report.same, notes=tenants)
            self.stdout.write("\n".join(lines))
        differing = [name for name, report in reports.items() if not report.same]
        if differing:
            raise differences_failure(len(differing))
        self.stdout.write("lakehouse = source")

    def against_manifest(self, manifest, folder, label: str | None) -> None:
        manifest_folder, manifest_name = manifest
        report = verify_manifest(manifest_folder, folder, label, manifest_name=manifest_name)
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
        if not report.same:
            raise differences_failure(message="the tables differ from the manifest")
        self.stdout.write("tables = manifest")
