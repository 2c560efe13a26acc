"""The change stream: transactions read from the slot over the replication protocol, written
in batches of files (or shown), each batch made durable and recorded before the slot is told it
may let go of it."""

import select
import struct
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from core.capture.files import FileWriter, is_timestamp, utc_timestamp
from core.capture.record import Capture
from core.capture.target import change_sequence
from core.replication.connections import (
    current_wal_lsn,
    replication_connection,
    wait_for_confirmation,
)
from core.replication.decoding import (
    UNCHANGED,
    Change,
    commit_time,
    parse_change,
    values_in_order,
)
from core.replication.folder import Layout, crash_point
from core.source.catalog import SCHEMA
from core.storage import Lock

DECODING_OPTIONS = {"include-timestamp": "on", "skip-empty-xacts": "on"}
# A transaction's changes are kept in memory up to this many, then spilled to a temporary file.
SPILL_AFTER = 20_000
IDLE_POLL = 0.2


class TransactionBuffer:
    """A transaction's change lines until its COMMIT says when it committed: in memory up to
    SPILL_AFTER lines, then in a temporary file, so a huge transaction costs no more memory
    than a small one."""

    def __init__(self):
        self.lines: list[str] = []
        self.spill = None
        self.count = 0

    def add(self, line: str) -> None:
        self.count += 1
        if self.spill is None and len(self.lines) < SPILL_AFTER:
            self.lines.append(line)
            return
        if self.spill is None:
            self.spill = tempfile.TemporaryFile(prefix="cdc-tail-")  # noqa: SIM115 (closed in close())
        data = line.encode()
        self.spill.write(struct.pack(">I", len(data)) + data)

    def __iter__(self):
        yield from self.lines
        if self.spill is not None:
            self.spill.seek(0)
            while header := self.spill.read(4):
                yield self.spill.read(struct.unpack(">I", header)[0]).decode()

    def close(self) -> None:
        if self.spill is not None:
            self.spill.close()


@dataclass
class Totals:
    changes: dict[str, int] = field(default_factory=dict)
    transactions: int = 0
    files: int = 0  # change files
    load_files: int = 0  # full-load files, if a full load ran
    unchanged_lobs: dict[str, int] = field(default_factory=dict)  # written as NULL, per table
    loaded: dict[str, int] | None = None  # rows per table, if a full load ran
    last_commit: str | None = None  # the commit time of the last transaction taken
    caught_up: bool = False  # nothing more was waiting, last time the slot was asked

    def add(self, table: str) -> None:
        self.changes[table] = self.changes.get(table, 0) + 1


class Batch:
    """The changes of consecutive transactions, one file per table, until the target's rollover
    (CdcMaxBatchInterval, CdcMinFileSize, or a new date folder) at a commit boundary."""

    def __init__(self, layout: Layout):
        self.layout = layout
        self.writers: dict[str, FileWriter] = {}
        self.first_lsn = self.last_lsn = None
        self.first_commit: datetime | None = None
        self.last_commit: datetime | None = None
        self.started = time.monotonic()
        self.partitions: dict[datetime, str] = {}

    @property
    def bytes(self) -> int:
        return sum(writer.bytes for writer in self.writers.values())

    def accepts(self, committed: datetime) -> bool:
        """Whether a transaction committed then may join (same date folder)."""
        return self.first_commit is None or self.partition(committed) == self.partition(
            self.first_commit
        )

    def partition(self, moment: datetime) -> str:
        # Every zone's offset is a whole number of quarter hours, so a date (or hour) folder
        # cannot change within one: one strftime per quarter hour, not one per commit.
        quarter = moment.replace(minute=moment.minute - moment.minute % 15, second=0, microsecond=0)
        if quarter not in self.partitions:
            self.partitions[quarter] = self.layout.target.partition(quarter)
        return self.partitions[quarter]

    def full(self) -> bool:
        target = self.layout.target
        return self.first_lsn is not None and (
            time.monotonic() - self.started >= target.cdc_max_batch_interval
            or self.bytes >= target.cdc_min_file_size * 1024
        )

    def write(self, table: str, row: list) -> None:
        writer = self.writers.get(table)
        if writer is None:
            layout = self.layout
            spool = layout.spool / f"{table}{layout.target.suffix}.partial"
            writer = self.writers[table] = FileWriter(
                spool, layout.tables[table], layout.target, durable=layout.output.is_local
            )
        writer.write(row)

    def committed(self, lsn: int, moment: datetime) -> None:
        if self.first_lsn is None:
            self.first_lsn, self.first_commit = lsn, moment
            self.started = time.monotonic()
        self.last_lsn, self.last_commit = lsn, moment

    def finish(self) -> int:
        """Publish every file under its name in its date folder, durably; returns the files
        written."""
        layout = self.layout
        name = layout.target.change_name(self.first_commit, self.first_lsn, self.last_lsn)
        files = {
            layout.key(table, self.first_commit, name): writer.close()
            for table, writer in sorted(self.writers.items())
        }
        for count, _ in enumerate(layout.output.publish_all(files)):
            if count == 0:
                crash_point("between-batch-files")
        crash_point("before-folder-sync")
        layout.output.settle(list(files))
        return len(files)

    def discard(self) -> None:
        for writer in self.writers.values():
            writer.discard()
        self.writers.clear()


class SchemaChanged(Exception):
    """A change carries a column the capture's schema does not have (an ALTER TABLE … ADD
    COLUMN while cdc_tail ran): the stream starts again from the last durable batch, with the
    schema read anew."""


def change_row(
    columns: list[tuple[str, bool]], change: Change, committed: str, sequence: str, totals: Totals
) -> list[str | None]:
    """A file row from a change; `columns` is the table's (name, is a timestamp) in order."""
    values = change.values
    if len(values) > len(columns) or not values.keys() <= {name for name, _ in columns}:
        raise SchemaChanged(change.table)
    row: list[str | None] = [change.op, committed]
    for name, stamp in columns:
        value = values.get(name)
        if value is UNCHANGED:
            # Not in the WAL: DMS writes such a value as NULL, and so do we (and count it).
            totals.unchanged_lobs[change.table] = totals.unchanged_lobs.get(change.table, 0) + 1
            value = None
        elif stamp and value is not None:
            value = utc_timestamp(value)
        row.append(value)
    row.append(sequence)
    return row


# --- the stream ----------------------------------------------------------------------------


@dataclass
class Transaction:
    """A committed transaction, for the terminal view."""

    xid: str
    commit_lsn: int
    committed_at: str
    changes: list[Change]


class Stream:
    """Reads the slot from where it was confirmed, writes batches (or passes transactions to
    `on_transaction`), and confirms what is durable."""

    def __init__(
        self,
        params: dict,
        *,
        slot: str,
        layout: Layout | None,
        capture: Capture | None,
        follow: bool,
        should_stop: Callable[[], bool],
        on_transaction: Callable[[Transaction], None] | None,
        totals: Totals,
        lock: Lock | None = None,
        on_progress: Callable[[Totals], None] | None = None,
    ):
        self.params = params
        self.lock = lock
        self.confirmed: int | None = None  # the last position the slot was told to let go of
        self.on_progress = on_progress
        self.reported = 0.0
        self.slot = slot
        self.layout = layout
        self.capture = capture
        self.follow = follow
        self.should_stop = should_stop
        self.on_transaction = on_transaction
        self.totals = totals
        tables = layout.tables.items() if layout else ()
        self.columns = {
            name: [(column.name, is_timestamp(column.type)) for column in table.columns]
            for name, table in tables
        }
        self.stamps = {
            name: [index for index, (_, stamp) in enumerate(columns) if stamp]
            for name, columns in self.columns.items()
        }

    def run(self) -> None:
        until = None if self.follow else current_wal_lsn(self.params)
        connection = replication_connection(self.params)
        try:
            cursor = connection.cursor()
            cursor.start_replication(
                slot_name=self.slot, decode=True, options=DECODING_OPTIONS, status_interval=5
            )
            self.read(cursor, until)
        finally:
            connection.close()
        if self.confirmed is not None:
            wait_for_confirmation(self.params, self.slot, self.confirmed)

    def confirm(self, cursor, lsn: int) -> None:
        """Tell the slot it may let go of everything up to `lsn`, now."""
        cursor.send_feedback(flush_lsn=lsn, write_lsn=lsn, force=True)
        self.confirmed = lsn

    def read(self, cursor, until: int | None) -> None:
        """Until caught up with `until` (or, following, until asked to stop), between
        transactions: a transaction is never cut."""
        batch = Batch(self.layout) if self.layout else None
        buffer, begin_xid, last_request, shown = None, None, 0.0, None
        try:
            while True:
                message = cursor.read_message()
                self.totals.caught_up = message is None and buffer is None
                self.progress()
                if message is None:
                    if self.lock is not None:
                        self.lock.keep()
                    if buffer is None:
                        if batch is not None and batch.full():
                            batch = self.flush(cursor, batch)
                        if self.should_stop() or (until is not None and cursor.wal_end >= until):
                            break
                    if time.monotonic() - last_request > IDLE_POLL:
                        cursor.send_feedback(reply=True)  # ask how far the server's WAL goes
                        last_request = time.monotonic()
                    select.select([cursor], [], [], IDLE_POLL)
                    continue
                payload = message.payload
                if payload.startswith("BEGIN"):
                    buffer, begin_xid = TransactionBuffer(), payload[6:]
                elif payload.startswith("COMMIT") and buffer is not None:
                    lsn = message.data_start
                    committed = utc_timestamp(commit_time(payload))
                    if self.capture is not None and lsn <= self.capture.flushed_lsn:
                        # In the files already: recorded, but the slot was not told before a
                        # crash, so it sends the transaction again.
                        buffer.close()
                        buffer = None
                        continue
                    if batch is None:
                        self.show(buffer, begin_xid, lsn, committed)
                        # Sent with the next status update; the last one is forced at the end.
                        cursor.send_feedback(flush_lsn=lsn, write_lsn=lsn)
                        shown = lsn
                    else:
                        moment = datetime.fromisoformat(committed + "+00:00")
                        if not batch.accepts(moment):
                            batch = self.flush(cursor, batch)
                        self.write_transaction(batch, buffer, lsn, committed)
                        batch.committed(lsn, moment)
                        if batch.full():
                            batch = self.flush(cursor, batch)
                    buffer.close()
                    buffer = None
                    self.totals.transactions += 1
                    self.totals.last_commit = committed
                    if self.should_stop() or (until is not None and lsn >= until):
                        break
                elif buffer is not None:
                    buffer.add(payload)
            if batch is not None:
                self.flush(cursor, batch)
            elif shown is not None:
                self.confirm(cursor, shown)
        except BaseException:
            if batch is not None:
                batch.discard()
            raise
        finally:
            if buffer is not None:
                buffer.close()

    def progress(self) -> None:
        """The totals to `on_progress`, twice a second at most."""
        if self.on_progress is not None and time.monotonic() - self.reported >= 0.5:
            self.reported = time.monotonic()
            self.on_progress(self.totals)

    def write_transaction(self, batch: Batch, buffer, lsn: int, committed: str) -> None:
        columns, stamps = self.columns, self.stamps
        for position, line in enumerate(buffer, start=1):
            whole = values_in_order(line)
            if whole is not None and whole[0] == SCHEMA and whole[1] in columns:
                _, table, op, values = whole
                if len(values) == len(columns[table]):
                    for index in stamps[table]:
                        if values[index] is not None and values[index] is not UNCHANGED:
                            values[index] = utc_timestamp(values[index])
                    if UNCHANGED in values:
                        count = values.count(UNCHANGED)
                        self.totals.unchanged_lobs[table] = (
                            self.totals.unchanged_lobs.get(table, 0) + count
                        )
                        values = [None if value is UNCHANGED else value for value in values]
                    batch.write(table, [op, committed, *values, change_sequence(lsn, position)])
                    self.totals.add(table)
                    continue
            change = parse_change(line)
            if change is None or change.schema != SCHEMA or change.table not in columns:
                continue
            row = change_row(
                columns[change.table],
                change,
                committed,
                change_sequence(lsn, position),
                self.totals,
            )
            batch.write(change.table, row)
            self.totals.add(change.table)

    def show(self, buffer, xid: str, lsn: int, committed: str) -> None:
        changes = [change for line in buffer if (change := parse_change(line)) is not None]
        for change in changes:
            self.totals.add(change.table)
        if self.on_transaction:
            self.on_transaction(Transaction(xid, lsn, committed, changes))

    def flush(self, cursor, batch: Batch) -> Batch:
        """Make the batch durable, record it, then let the slot go of it."""
        if batch.first_lsn is not None:
            rows = {table: writer.rows for table, writer in batch.writers.items()}
            self.totals.files += batch.finish()
            self.capture.flushed_lsn = batch.last_lsn
            self.capture.took(rows, batch.first_commit, batch.last_commit)
            if self.lock is not None:
                self.lock.keep()
            crash_point("before-capture-record")
            self.capture.save(self.layout.output)
            crash_point("before-feedback")
            self.confirm(cursor, batch.last_lsn)
        return Batch(self.layout)
