from core.capture.record import CAPTURE_FILE
from core.errors import StorageError, UsageError
from core.lake.warehouse import WAREHOUSE_RECORD
from core.management.arguments import place, usage_error
from core.management.base import ProjectCommand
from core.storage import location, registry


class Command(ProjectCommand):
    help = (
        "Take places off the pipeline page (/admin/pipeline/): captures and warehouses that "
        "cdc_tail, lakehouse_apply and lakehouse_verify recorded there. Nothing is deleted "
        "but the page's record of them; the next command that writes a place shows it again."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "places",
            nargs="*",
            type=place,
            metavar="PLACE",
            help="a capture or warehouse as the page names it: a folder or s3://BUCKET/PREFIX",
        )
        parser.add_argument(
            "--gone",
            action="store_true",
            help="forget every place that no longer holds a capture or a warehouse (a store "
            "that does not answer is kept)",
        )

    def handle(self, *args, places, gone, verbosity, **options):
        if not places and not gone:
            raise usage_error("name the places to forget, or give --gone")
        if gone:
            places = [*places, *self.gone_places()]
        for where in places:
            if registry.configured(where):
                raise UsageError(
                    f"{where} is listed in PIPELINE_LOCATIONS: take it out of the settings"
                )
            kinds = registry.forget(where)
            if verbosity >= 1:
                said = " and ".join(kind.removesuffix("s") for kind in kinds)
                self.stdout.write(
                    f"forgot {said} {where}" if kinds else f"{where} was not on the page"
                )

    def gone_places(self):
        known, seen = registry.known(), set()
        for kind, record in (("captures", CAPTURE_FILE), ("warehouses", WAREHOUSE_RECORD)):
            for name, entry in known[kind].items():
                if entry.get("configured") or name in seen:
                    continue
                where = location(name)
                try:
                    if not where.exists(record):
                        seen.add(name)
                        yield where
                except StorageError as error:
                    self.stderr.write(f"kept {name}: {error}")
