from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from core.replication.capture import CaptureError
from core.replication.verify import verify_capture


class Command(BaseCommand):
    help = (
        "Check a cdc_tail --output folder: rebuild each table from the full load and every change "
        "(the last change per key by the change sequence) and compare it with the live table by "
        "key ranges and hashes, row by row where they differ; and check the stream itself: every "
        "file readable with the capture's settings, no (key, sequence) twice, sequences rising "
        "from file to file, full-load rows below every change. Exit status 1 on any difference."
    )

    def add_arguments(self, parser):
        parser.add_argument("folder")

    def handle(self, *args, folder, **options):
        path = Path(folder)
        if not path.is_dir():
            raise CommandError(f"{folder} is not a folder: give the --output folder of cdc_tail")
        try:
            reports = verify_capture(connection.get_connection_params(), path)
        except CaptureError as error:
            raise CommandError(str(error)) from None
        differing = 0
        for name, report in reports.items():
            if report.same:
                verdict = "same"
            else:
                differing += 1
                verdict = (
                    f"DIFFERS: {len(report.missing):,} missing, {len(report.extra):,} extra, "
                    f"{len(report.changed):,} changed"
                )
            self.stdout.write(
                f"{name:<18} {report.in_files:>10,} in files {report.live:>10,} live  {verdict}"
            )
            for problem in report.problems:
                self.stdout.write(f"{'':<18} stream: {problem}")
            for example in report.examples:
                self.stdout.write(f"{'':<18} e.g. {example}")
        if differing:
            raise CommandError(f"{differing} tables differ from the source", returncode=1)
        self.stdout.write("snapshot + changes = source")
