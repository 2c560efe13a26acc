from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from core.replication.export import MIN_LOB_MAX_KB, UnknownColumn, export_dms


def table_column(value: str) -> tuple[str, str]:
    table, _, column = value.partition(".")
    if not table or not column:
        raise ValueError
    return table, column


class Command(BaseCommand):
    help = (
        "Write the hand-off to Terraform into a folder: table-mappings.json (the core tables, "
        "with optional transformations), task-settings.json (limited LOB mode sized from the "
        "data), dms.tf (PostgreSQL source with test_decoding, S3 target writing Parquet with Op "
        "and a timestamp column, a full-load-and-cdc task), and schema.md / schema.json (every "
        "core table's columns, types, keys, indexes and DMS types, read from the database)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--output", default="dms", help="folder to write into (default dms/)")
        parser.add_argument(
            "--slot", help="an existing logical slot DMS should use (default: DMS makes its own)"
        )
        parser.add_argument(
            "--lob-max-kb",
            type=int,
            default=MIN_LOB_MAX_KB,
            help=f"smallest LobMaxSize to use (default {MIN_LOB_MAX_KB}); raised to fit the data",
        )
        parser.add_argument("--target-schema", help="rename schema public to this in the target")
        parser.add_argument(
            "--strip-table-prefix",
            action="store_true",
            help="write core_order as order, and so on",
        )
        parser.add_argument(
            "--exclude-column",
            action="append",
            default=[],
            metavar="TABLE.COLUMN",
            help="leave a column out (repeatable), e.g. core_customer.phone",
        )

    def handle(
        self,
        *args,
        output,
        slot,
        lob_max_kb,
        target_schema,
        strip_table_prefix,
        exclude_column,
        **options,
    ):
        if lob_max_kb < 1:
            raise CommandError("--lob-max-kb must be at least 1")
        try:
            excluded = [table_column(value) for value in exclude_column]
        except ValueError:
            raise CommandError(
                "--exclude-column takes TABLE.COLUMN, e.g. core_customer.phone"
            ) from None
        try:
            with connection.cursor() as cursor:
                written = export_dms(
                    cursor,
                    output=Path(output),
                    slot=slot,
                    lob_floor_kb=lob_max_kb,
                    target_schema=target_schema,
                    strip_prefix=strip_table_prefix,
                    exclude_columns=excluded,
                )
        except UnknownColumn as error:
            raise CommandError(f"--exclude-column: {error}") from None
        for path in written.values():
            self.stdout.write(f"wrote {path}")
