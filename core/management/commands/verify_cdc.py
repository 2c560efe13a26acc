from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from core.errors import ProjectError
from core.management.reconciling import fail_if_different, write_report
from core.storage import location
from core.verify.capture import verify_capture


class Command(BaseCommand):
    help = (
        "Check a cdc_tail --output folder: rebuild each table from the full load and every change "
        "(the last change per key by the change sequence) and compare it with the live table by "
        "key ranges and hashes, row by row where they differ; and check the stream itself: every "
        "file readable with the capture's settings, no (key, sequence) twice, sequences rising "
        "from file to file, full-load rows below every change. Exit status 1 on any difference."
    )

    def add_arguments(self, parser):
        parser.add_argument("folder", help="a cdc_tail --output folder, or its s3://BUCKET/PREFIX")

    def handle(self, *args, folder, **options):
        try:
            where = location(folder)
            if where.is_local and not where.path.is_dir():
                raise CommandError(
                    f"{folder} is not a folder: give the --output folder of cdc_tail"
                )
            reports = verify_capture(connection.get_connection_params(), where)
        except ProjectError as error:
            raise CommandError(str(error)) from None
        for report in reports.values():
            write_report(self.stdout.write, report, held="in files", same=report.same)
        fail_if_different(sum(not report.same for report in reports.values()))
        self.stdout.write("snapshot + changes = source")
