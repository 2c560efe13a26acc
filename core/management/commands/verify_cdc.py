import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from core.replication.capture import CaptureError, verify


class Command(BaseCommand):
    help = (
        "Replay a cdc_tail --output folder (the full load, then every change file in order) and "
        "compare the result with the live tables, row by row and value by value. Exit status 1 "
        "if any table differs."
    )

    def add_arguments(self, parser):
        parser.add_argument("folder")

    def handle(self, *args, folder, **options):
        connection.ensure_connection()
        try:
            report = verify(connection.connection, Path(folder))
        except CaptureError as error:
            raise CommandError(str(error)) from None
        differing = 0
        for table, counts in report.items():
            wrong = counts["missing"] + counts["extra"] + counts["changed"]
            differing += bool(wrong)
            verdict = (
                "same"
                if not wrong
                else (
                    f"DIFFERS: {counts['missing']} missing, {counts['extra']} extra, "
                    f"{counts['changed']} changed"
                )
            )
            replayed, live = counts["replayed"], counts["live"]
            self.stdout.write(f"{table:<18} {replayed:>9,} replayed {live:>9,} live  {verdict}")
        if differing:
            self.stdout.write(f"{differing} tables differ")
            sys.exit(1)
        self.stdout.write("snapshot + changes = source")
