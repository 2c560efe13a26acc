import json

from django.db import connection

from core.errors import ProjectError
from core.management.arguments import at_least
from core.management.base import ProjectCommand
from core.replication.checks import FAIL, PASS, run_checks
from core.replication.setup import DEFAULT_PUBLICATION


class Command(ProjectCommand):
    help = (
        "Check that this PostgreSQL is ready to be an AWS DMS source (and a Debezium one): "
        "version, wal_level, slots and senders, wal_sender_timeout, replication rights, "
        "decoding plugins, publication, primary keys, replica identity, idle slots and the WAL "
        "they hold, long and prepared transactions, WAL limits, and LOB columns. Each check "
        "is PASS, WARN or FAIL with what it measured and the fix. Exit status 1 if any FAILs."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--publication",
            default=DEFAULT_PUBLICATION,
            help=f"the publication Debezium reads (default {DEFAULT_PUBLICATION})",
        )
        parser.add_argument(
            "--lob-max-kb",
            type=at_least(1),
            default=32,
            help="the DMS task's LobMaxSize in KB, for the LOB column check (default 32)",
        )
        parser.add_argument(
            "--format",
            choices=["text", "json", "table"],
            default="text",
            help="text: a line per check (default); json: a list of objects",
        )

    def handle(self, *args, publication, lob_max_kb, format, **options):
        if format == "table":
            self.stderr.write("warning: --format table is now --format text; the old spelling "
                              "goes in the next release")  # fmt: skip
        connection.ensure_connection()
        results = run_checks(connection.connection, publication=publication, lob_max_kb=lob_max_kb)
        if format == "json":
            self.stdout.write(json.dumps([check.as_dict() for check in results], indent=2))
        else:
            width = max(len(check.name) for check in results)
            for check in results:
                self.stdout.write(f"{check.status:<5} {check.name:<{width}}  {check.value}")
                if check.status != PASS:
                    self.stdout.write(f"{'':<5} {'':<{width}}  fix: {check.fix}")
            failed = sum(check.status == FAIL for check in results)
            warned = sum(check.status not in (PASS, FAIL) for check in results)
            warnings = "warning" if warned == 1 else "warnings"
            self.stdout.write(f"{len(results)} checks: {failed} failed, {warned} {warnings}")
        failed = sum(check.status == FAIL for check in results)
        if failed:
            raise ProjectError(f"{failed} checks failed: see the fixes above")
