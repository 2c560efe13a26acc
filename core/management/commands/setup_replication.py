from django.db import connection

from core.management.arguments import usage_error
from core.management.base import ProjectCommand
from core.replication import setup
from core.replication.setup import DEFAULT_PUBLICATION, IDENTITY_CHOICES, PLUGINS, SetupReport


class Command(ProjectCommand):
    help = (
        "Create, if missing, the publication for all tables, set the replica identity of the "
        "core tables (FULL where a table has LOB columns, so an UPDATE that leaves a large "
        "value unchanged still carries it), and optionally a logical replication slot. Safe to "
        "run again: what exists is left as it is. --drop --slot NAME drops that slot only; "
        "--drop-publication drops the publication and resets the replica identities."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--publication",
            default=DEFAULT_PUBLICATION,
            help=f"the publication to make or drop (default {DEFAULT_PUBLICATION})",
        )
        parser.add_argument(
            "--replica-identity",
            choices=IDENTITY_CHOICES,
            default="auto",
            help="auto (the default): full for tables with LOB columns, default elsewhere; "
            "default: the primary key (enough for DMS); full: whole before-images everywhere "
            "(what Debezium needs for old values), at the cost of more WAL",
        )
        parser.add_argument(
            "--slot", help="also make this logical replication slot (default: make none)"
        )
        parser.add_argument(
            "--plugin",
            choices=PLUGINS,
            default="test_decoding",
            help="output plugin of --slot: test_decoding (what DMS uses; the default) or "
            "pgoutput (Debezium)",
        )
        parser.add_argument(
            "--drop", action="store_true", help="with --slot NAME: drop that slot, nothing else"
        )
        parser.add_argument(
            "--drop-publication",
            action="store_true",
            help="drop the publication and put the replica identities back to default (and "
            "nothing else)",
        )

    def handle(self, *args, publication, replica_identity, slot, plugin, verbosity, **options):
        if options["drop"] and not slot:
            raise usage_error(
                "--drop needs --slot NAME (it drops that slot only); to drop the publication, "
                "use --drop-publication"
            )
        report = SetupReport()
        with connection.cursor() as cursor:
            if options["drop"]:
                report.add(setup.drop_slot(cursor, slot=slot))
            if options["drop_publication"]:
                report.add(setup.drop_publication(cursor, publication=publication))
            if not (options["drop"] or options["drop_publication"]):
                report.add(
                    setup.setup_replication(
                        cursor,
                        publication=publication,
                        replica_identity=replica_identity,
                        slot=slot,
                        plugin=plugin,
                    )
                )
        if verbosity >= 1:
            for line in report.done:
                self.stdout.write(line)
            for line in report.existing:
                self.stdout.write(f"already there: {line}")
            if not report.done:
                self.stdout.write("nothing to change")
