import time

from core.lake.maintain import TableMaintained, maintain_warehouse
from core.lake.writer import give_back_freed_memory
from core.management.arguments import at_least, place
from core.management.base import ProjectCommand


class Command(ProjectCommand):
    help = (
        "Keep a warehouse's tables small and quick to read, safe while lakehouse_apply runs: "
        "compact each partition to the newest version of each key, drop the tombstones no "
        "file still to come can contradict, and expire versions older than --retain-hours "
        "with the data files only they read."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--warehouse",
            type=place,
            required=True,
            help="the tables: a folder, or s3://BUCKET/PREFIX",
        )
        parser.add_argument(
            "--retain-hours",
            type=at_least(1, float),
            default=168,
            help="keep the versions of the last HOURS for time travel, and for applies under "
            "way (default 168, Delta's own; at least 1)",
        )
        parser.add_argument(
            "--tombstone-grace-hours",
            type=at_least(0, float),
            default=24,
            help="keep a tombstone at least this long after its delete, for files still on "
            "their way to a copy of the capture (default 24; 0 if the warehouse reads the "
            "capture where cdc_tail writes it)",
        )

    def handle(self, *args, warehouse, retain_hours, tombstone_grace_hours, verbosity, **options):
        give_back_freed_memory()
        started = time.monotonic()
        report = maintain_warehouse(
            warehouse,
            retain_hours=retain_hours,
            tombstone_grace_hours=tombstone_grace_hours,
            on_table=self.report if verbosity >= 1 else None,
        )
        if verbosity >= 1:
            replaced = sum(table.partitions for table in report.values())
            dropped = sum(table.tombstones_dropped for table in report.values())
            self.stdout.write(
                f"maintained {len(report)} tables in {warehouse} in "
                f"{time.monotonic() - started:.1f}s: {replaced} partitions compacted, "
                f"{dropped:,} tombstones dropped"
            )

    def report(self, table: str, done: TableMaintained) -> None:
        parts = []
        if done.partitions:
            parts.append(
                f"{done.partitions} partitions compacted ({done.files_before:,} files -> "
                f"{done.files_after:,}, {done.rows_before:,} rows -> {done.rows_after:,})"
            )
        if done.tombstones_dropped:
            parts.append(f"{done.tombstones_dropped:,} tombstones dropped")
        if done.files_expired:
            parts.append(f"{done.files_expired:,} old files deleted")
        self.stdout.write(f"{table:<18} {', '.join(parts) or 'nothing to do'}")
        if done.tombstones_kept_because:
            self.stdout.write(f"{'':<18} tombstones kept: {done.tombstones_kept_because}")
