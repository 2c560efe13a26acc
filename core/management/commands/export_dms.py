import argparse
from pathlib import Path

from django.db import connection

from core.errors import UnknownColumn
from core.management.arguments import at_least, renamed
from core.management.base import ProjectCommand
from core.replication.handoff import MIN_LOB_MAX_KB, export_dms


def table_column(value: str) -> tuple[str, str]:
    table, _, column = value.partition(".")
    if not table or not column:
        raise argparse.ArgumentTypeError(
            f"takes TABLE.COLUMN, e.g. core_customer.phone, not {value}"
        )
    return table, column


class Command(ProjectCommand):
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
            "--min-lob-max-kb",
            type=at_least(1),
            default=MIN_LOB_MAX_KB,
            help=f"the smallest LobMaxSize to give the task, in KB (default {MIN_LOB_MAX_KB}); "
            "raised to twice the largest LOB stored now",
        )
        renamed(parser, "--lob-max-kb", "--min-lob-max-kb", type=at_least(1))
        parser.add_argument(
            "--target-schema",
            help="rename schema public to this in the target (default: keep public)",
        )
        parser.add_argument(
            "--strip-table-prefix",
            action="store_true",
            help="write core_order as order, and so on (default: keep the names)",
        )
        parser.add_argument(
            "--exclude-column",
            action="append",
            type=table_column,
            default=[],
            metavar="TABLE.COLUMN",
            help="leave a column out (repeatable), e.g. core_customer.phone (default: none)",
        )

    def handle(
        self,
        *args,
        output,
        slot,
        min_lob_max_kb,
        target_schema,
        strip_table_prefix,
        exclude_column,
        **options,
    ):
        try:
            with connection.cursor() as cursor:
                written = export_dms(
                    cursor,
                    output=Path(output),
                    slot=slot,
                    lob_floor_kb=min_lob_max_kb,
                    target_schema=target_schema,
                    strip_prefix=strip_table_prefix,
                    exclude_columns=exclude_column,
                )
        except UnknownColumn as error:
            raise UnknownColumn(f"--exclude-column: {error}") from None
        for path in written.values():
            self.stdout.write(f"wrote {path}")
