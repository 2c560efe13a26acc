import json
import logging
import signal
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from django.db import connection

from core.capture.target import S3Target
from core.errors import ReplicationSetupError, TargetSettingsError
from core.management.arguments import at_least, file_place, place, usage_error
from core.management.base import ProjectCommand
from core.management.live import LiveView
from core.replication.setup import valid_name
from core.replication.tail import Totals, Transaction, run_capture
from core.verify.manifest import MANIFEST_FILE, write_checkpoint


class Command(ProjectCommand):
    help = (
        "Read a logical replication slot with test_decoding (as DMS does) and show each change "
        "as DMS would write it: Op (I/U/D), commit timestamp, table and values. With --output "
        "(a folder, or s3://BUCKET/PREFIX) it writes DMS's S3 layout instead, with the settings "
        "export_dms gives the S3 endpoint: a full load from the slot's own snapshot, then "
        "batches of changes, each exactly once through any crash or restart. Without --follow "
        "it drains what the slot holds and exits."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--slot",
            default="cdc_tail",
            help="the logical slot to read (default cdc_tail); a new capture (--output into an "
            "empty folder) makes it, otherwise it must exist or be asked for with --create-slot",
        )
        parser.add_argument(
            "--create-slot",
            action="store_true",
            help="without --output: make the slot if there is none (it keeps WAL until dropped)",
        )
        parser.add_argument(
            "--follow",
            action="store_true",
            help="keep streaming until Ctrl-C or SIGTERM (default: drain what the slot holds)",
        )
        parser.add_argument(
            "--format",
            choices=["text", "json"],
            default="text",
            help="without --output: how each change is shown (default text)",
        )
        parser.add_argument(
            "--output",
            type=place,
            metavar="CAPTURE",
            help="write DMS's S3 layout into this folder, or s3://BUCKET/PREFIX (the local S3 "
            "store, or the one the AWS_* settings name); default: show the changes instead",
        )
        parser.add_argument(
            "--data-format",
            choices=["parquet", "csv"],
            help="file format (default: parquet, as export_dms configures DMS; a folder keeps "
            "the format it was started with)",
        )
        parser.add_argument(
            "--s3-settings",
            metavar="FILE",
            help="S3 endpoint settings for a new capture, as JSON (the s3-settings.json that "
            "export_dms writes; default: the same settings)",
        )
        parser.add_argument(
            "--manifest",
            nargs="?",
            type=file_place,
            const=(None, ""),
            metavar="FILE",
            help="with --output: when the capture stops, add the source's state to the expected "
            "results, the capture's manifest (CAPTURE/manifest.json, the default FILE); run it "
            "with nothing else writing",
        )
        parser.add_argument(
            "--batch-seconds",
            type=at_least(1),
            metavar="SECONDS",
            help="write a batch of changes at least this often, in seconds (CdcMaxBatchInterval; "
            "default: the capture's, 60)",
        )

    def handle(
        self,
        *args,
        slot,
        follow,
        format,
        output,
        data_format,
        s3_settings,
        batch_seconds,
        manifest,
        create_slot,
        **options,
    ):
        try:
            valid_name("slot", slot)
        except ReplicationSetupError as error:
            raise usage_error(f"--slot: {error}") from None
        if manifest is not None and not output:
            raise usage_error("--manifest goes with --output")
        target = self.target(s3_settings, data_format)
        self.format = format
        where = output
        if manifest is not None and manifest[0] is not None:  # a FILE: only the capture's own
            folder, name = manifest
            if name != MANIFEST_FILE or not folder.same_as(where):
                raise usage_error(
                    f"--manifest: a capture's manifest is {where.uri(MANIFEST_FILE)}, not "
                    f"{folder.uri(name)}"
                )
        stopping = []
        self.stderr.style_func = None  # progress and notes, not errors: no red on a terminal
        self.view = LiveView(self.stderr, logging.getLogger("lakehouse.cdc_tail"), service=follow)
        self.started = time.monotonic()
        previous = {
            sig: signal.signal(sig, lambda *_: stopping.append(True))
            for sig in (signal.SIGINT, signal.SIGTERM)
        }
        try:
            totals = run_capture(
                connection.get_connection_params(),
                slot=slot,
                output=where,
                target=target,
                batch_seconds=batch_seconds,
                follow=follow,
                should_stop=lambda: bool(stopping),
                on_transaction=None if output else self.show,
                on_note=self.view.note,
                create_slot=create_slot,
                on_progress=self.progress if where is not None else None,
            )
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.view.clear()
        self.summary(totals, slot, output)
        if manifest is not None:
            with connection.cursor() as cursor:
                taken = write_checkpoint(where, cursor, "end of capture")
            self.stdout.write(f"expected results at {taken['lsn']} in {where.uri(MANIFEST_FILE)}")

    def target(self, settings: str | None, data_format: str | None) -> S3Target | None:
        """The settings asked for, if any (a folder otherwise keeps its own)."""
        if settings is None and data_format is None:
            return None
        target = S3Target()
        if settings is not None:
            try:
                target = S3Target.from_s3_settings(json.loads(Path(settings).read_text()))
            except (OSError, ValueError, TypeError) as error:
                raise TargetSettingsError(f"--s3-settings {settings}: {error}") from None
        return replace(target, data_format=data_format) if data_format else target

    def progress(self, totals: Totals) -> None:
        """Changes and files so far, their rate, and how far behind the source the capture is."""
        changes = sum(totals.changes.values())
        rate = changes / max(time.monotonic() - self.started, 1e-9)
        if totals.last_commit is None:
            behind = "waiting for changes" if totals.caught_up else "starting"
        elif totals.caught_up:
            behind = f"caught up (last commit {totals.last_commit[11:19]} UTC)"
        else:
            committed = datetime.fromisoformat(totals.last_commit + "+00:00")
            lag = (datetime.now(UTC) - committed).total_seconds()
            behind = f"{lag:,.1f} s behind (at {totals.last_commit[11:19]} UTC)"
        self.view.figures(
            f"{changes:,} changes ({rate:,.0f}/s) in {totals.files + totals.load_files:,} files, "
            f"{totals.transactions:,} transactions; {behind}"
        )

    def summary(self, totals: Totals, slot: str, output: str | None) -> None:
        if totals.loaded is not None:
            self.stdout.write(
                f"full load of {sum(totals.loaded.values()):,} rows in {totals.load_files:,} "
                f"files from slot {slot}'s snapshot into {output}"
            )
        tables = ", ".join(f"{table} {count:,}" for table, count in sorted(totals.changes.items()))
        files = f" in {totals.files:,} files" if output else ""
        # Showing the changes, stdout holds them alone (for a pipe); the totals go to stderr.
        (self.stdout if output else self.stderr).write(
            f"{sum(totals.changes.values()):,} changes{files} ({tables or 'none'}) from "
            f"{totals.transactions:,} transactions of slot {slot}"
        )
        for table, count in sorted(totals.unchanged_lobs.items()):
            self.stderr.write(
                f"warning: {count:,} large values that an UPDATE left unchanged are not in the "
                f"WAL of {table} and were written as NULL, as DMS writes them; give the table "
                "REPLICA IDENTITY FULL (`bin/manage setup_replication`) to carry them"
            )

    def show(self, transaction: Transaction) -> None:
        for change in transaction.changes:
            if self.format == "json":
                self.stdout.write(
                    json.dumps(
                        {
                            "Op": change.op,
                            "timestamp": transaction.committed_at,
                            "table": f"{change.schema}.{change.table}",
                            "key": change.values.get("id"),
                            "values": {
                                k: v for k, v in change.values.items() if isinstance(v, str | None)
                            },
                        },
                        ensure_ascii=False,
                    )
                )
            else:
                values = " ".join(
                    f"{name}={value!r}" for name, value in change.values.items() if name != "id"
                )
                self.stdout.write(
                    f"{change.op} {transaction.committed_at} {change.table} "
                    f"{change.values.get('id')} {values}"
                )
