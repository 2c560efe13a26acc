import json
import signal
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from core.replication.capture import CaptureError, as_text, start, tail
from core.replication.decoding import Transaction


class Command(BaseCommand):
    help = (
        "Read a logical replication slot with test_decoding (as DMS does) and show each change "
        "as DMS would write it: Op (I/U/D), commit timestamp, table, key and values. Without "
        "--follow it drains what the slot holds and exits. With --output DIR it writes DMS's S3 "
        "layout instead: a full load taken from the slot's own snapshot, then change files; "
        "killed and restarted, it resumes with no gap and no duplicate."
    )

    def add_arguments(self, parser):
        parser.add_argument("--slot", default="cdc_tail", help="created on first use")
        parser.add_argument("--follow", action="store_true", help="keep streaming until stopped")
        parser.add_argument("--format", choices=["text", "json"], default="text")
        parser.add_argument("--output", help="write DMS-style files into this folder")
        parser.add_argument("--data-format", choices=["csv", "parquet"], default="csv")
        parser.add_argument("--batch", type=int, default=5000, help="changes read per round trip")

    def handle(self, *args, slot, follow, format, output, data_format, batch, **options):
        if batch < 1:
            raise CommandError("--batch must be at least 1")
        stopping = []
        previous = {
            sig: signal.signal(sig, lambda *_: stopping.append(True))
            for sig in (signal.SIGINT, signal.SIGTERM)
        }
        connection.ensure_connection()
        try:
            layout, loaded = start(
                connection.connection,
                connection.get_connection_params(),
                slot=slot,
                output=Path(output) if output else None,
                data_format=data_format,
            )
            if loaded is not None:
                self.stdout.write(
                    f"full load of {sum(loaded.values()):,} rows from slot {slot}'s snapshot "
                    f"into {output}"
                )
            totals = tail(
                connection.connection,
                slot=slot,
                layout=layout,
                on_transaction=None if layout else self.show,
                follow=follow,
                batch_changes=batch,
                should_stop=lambda: bool(stopping),
            )
        except CaptureError as error:
            raise CommandError(str(error)) from None
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        self.stderr.write(
            f"{sum(totals.values()):,} changes ("
            + ", ".join(f"{table} {count:,}" for table, count in sorted(totals.items()))
            + f") from slot {slot}"
        )

    def show(self, transaction: Transaction) -> None:
        for change in transaction.changes:
            key = change.values.get("id")
            if self.options_format == "json":
                self.stdout.write(
                    json.dumps(
                        {
                            "Op": change.op,
                            "timestamp": as_text(transaction.committed_at),
                            "table": f"{change.schema}.{change.table}",
                            "key": as_text(key),
                            "values": {k: as_text(v) for k, v in change.values.items()},
                        }
                    )
                )
            else:
                values = " ".join(
                    f"{k}={as_text(v)!r}" for k, v in change.values.items() if k != "id"
                )
                self.stdout.write(
                    f"{change.op} {as_text(transaction.committed_at)} {change.table} {key} {values}"
                )

    def execute(self, *args, **options):
        self.options_format = options.get("format", "text")
        return super().execute(*args, **options)
