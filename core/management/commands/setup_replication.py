from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from core.replication import DEFAULT_PUBLICATION
from core.replication.setup import (
    PLUGINS,
    REPLICA_IDENTITIES,
    ReplicationSetupError,
    drop_replication,
    setup_replication,
)


class Command(BaseCommand):
    help = (
        "Create, if missing, the publication for all tables, set the replica identity of the "
        "core tables, and optionally a logical replication slot. Safe to run again: what exists "
        "is left as it is. --drop removes the publication (and --slot) and resets identities."
    )

    def add_arguments(self, parser):
        parser.add_argument("--publication", default=DEFAULT_PUBLICATION)
        parser.add_argument(
            "--replica-identity",
            choices=sorted(REPLICA_IDENTITIES),
            default="default",
            help="default: the primary key (enough for DMS); full: whole before-images "
            "(what Debezium needs for old values), at the cost of more WAL",
        )
        parser.add_argument("--slot", help="also create this logical replication slot")
        parser.add_argument(
            "--plugin",
            choices=PLUGINS,
            default="test_decoding",
            help="output plugin of --slot: test_decoding (what DMS uses) or pgoutput (Debezium)",
        )
        parser.add_argument("--drop", action="store_true", help="remove what this command made")

    def handle(
        self, *args, publication, replica_identity, slot, plugin, drop, verbosity, **options
    ):
        try:
            with connection.cursor() as cursor:
                if drop:
                    report = drop_replication(cursor, publication=publication, slot=slot)
                else:
                    report = setup_replication(
                        cursor,
                        publication=publication,
                        replica_identity=replica_identity,
                        slot=slot,
                        plugin=plugin,
                    )
        except ReplicationSetupError as error:
            raise CommandError(str(error)) from None
        if verbosity >= 1:
            for line in report.done:
                self.stdout.write(line)
            for line in report.existing:
                self.stdout.write(f"already there: {line}")
            if not report.done:
                self.stdout.write("nothing to change")
