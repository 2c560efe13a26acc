from django.db import connection

from core.management.arguments import place
from core.management.base import ProjectCommand
from core.verify.capture import verify_capture
from core.verify.report import differences_failure, report_lines


class Command(ProjectCommand):
    help = (
        "Check a cdc_tail --output folder: rebuild each table from the full load and every change "
        "(the last change per key by the change sequence) and compare it with the live table by "
        "key ranges and hashes, row by row where they differ; and check the stream itself: every "
        "file readable with the capture's settings, no (key, sequence) twice, sequences rising "
        "from file to file, full-load rows below every change. Exit status 1 on any difference."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "folder", type=place, help="a cdc_tail --output folder, or its s3://BUCKET/PREFIX"
        )

    def handle(self, *args, folder, **options):
        reports = verify_capture(connection.get_connection_params(), folder)
        for report in reports.values():
            self.stdout.write("\n".join(report_lines(report, held="in files", same=report.same)))
        differing = sum(not report.same for report in reports.values())
        if differing:
            raise differences_failure(differing)
        self.stdout.write("snapshot + changes = source")
