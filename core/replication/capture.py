"""cdc_tail: a logical slot read with test_decoding (the plugin DMS uses) over the streaming
replication protocol, written in DMS's S3 layout (see `target.py` for the settings and names):

    <DIR>/public/<table>/<date>/LOAD00000001.parquet   the full load, from the slot's snapshot
    <DIR>/public/<table>/<date>/<time>-<first LSN>-<last LSN>.parquet   a batch of changes
    <DIR>/capture.json                                  slot, settings, what is confirmed

Exactly once, through any fault: a batch's files are written to temporary names, fsynced, given
their names (derived from the batch's commit LSN range) and their folders fsynced; then
capture.json records the batch's last commit LSN; only then is the slot told (flush feedback)
that it may let go of those changes. A restart deletes any file of a batch beyond what
capture.json confirms, and the slot resends exactly those transactions, which are written again
under the same names. One process per folder (a lock file) and one reader per slot (PostgreSQL
refuses a second).
"""

import errno
import fcntl
import json
import os
import select
import shutil
import struct
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

import psycopg2
import psycopg2.extensions
import psycopg2.extras

from core.backoff import wait_before_retry
from core.replication import SCHEMA
from core.replication.decoding import (
    UNCHANGED,
    Change,
    commit_time,
    parse_change,
    values_in_order,
)
from core.replication.files import PARTIAL, FileWriter, fsync_folder, is_timestamp, utc_timestamp
from core.replication.schema import Table, read_schema
from core.replication.target import (
    LOAD_SEQUENCE,
    S3Target,
    change_range,
    change_sequence,
    lsn_number,
    lsn_text,
)

CAPTURE_FILE = "capture.json"
LOCK_FILE = ".lock"
LOAD_MARKER = ".full-load"  # present while a full load runs; a leftover means it was cut short
SESSION_OPTIONS = "-c TimeZone=UTC -c DateStyle=ISO -c IntervalStyle=postgres"
DECODING_OPTIONS = {"include-timestamp": "on", "skip-empty-xacts": "on"}
# A transaction's changes are kept in memory up to this many, then spilled to a temporary file.
SPILL_AFTER = 20_000
FULL_LOAD_FETCH = 5_000
IDLE_POLL = 0.2


class CaptureError(Exception):
    """One line for the user: what is wrong and what to do."""


def crash_point(name: str) -> None:
    """Fault injection for the tests of each window of a batch: with CDC_TAIL_CRASH_AT=<name>
    the process dies on the spot (as with SIGKILL) the first time it gets here."""
    if os.environ.get("CDC_TAIL_CRASH_AT") == name:
        os._exit(137)


# --- the folder ----------------------------------------------------------------------------


def write_durably(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + PARTIAL)
    with partial.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    partial.rename(path)
    fsync_folder(path.parent)


@dataclass
class Capture:
    """What capture.json records of a folder."""

    slot: str
    target: S3Target
    snapshot_lsn: int
    loaded_at: str  # the full-load rows' timestamp (the task's start)
    flushed_lsn: int  # every change committed up to here is in the files
    loaded: dict[str, int] = field(default_factory=dict)
    # Where the slot stood when cdc_tail last let go of it cleanly (None while it runs, and
    # after a crash). psycopg2 moves a slot on by itself over WAL that holds nothing for it,
    # so this, not flushed_lsn, tells whether someone else read the slot in between.
    released_lsn: int | None = None

    def save(self, output: Path) -> None:
        data = {
            "slot": self.slot,
            "s3_settings": self.target.s3_settings(),
            "snapshot_lsn": lsn_text(self.snapshot_lsn),
            "loaded_at": self.loaded_at,
            "flushed_lsn": lsn_text(self.flushed_lsn),
            "loaded": self.loaded,
            "released_lsn": None if self.released_lsn is None else lsn_text(self.released_lsn),
        }
        write_durably(output / CAPTURE_FILE, (json.dumps(data, indent=2) + "\n").encode())

    @classmethod
    def load(cls, output: Path) -> "Capture | None":
        path = output / CAPTURE_FILE
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text())
            return cls(
                slot=data["slot"],
                target=S3Target.from_s3_settings(data["s3_settings"]),
                snapshot_lsn=lsn_number(data["snapshot_lsn"]),
                loaded_at=data["loaded_at"],
                flushed_lsn=lsn_number(data["flushed_lsn"]),
                loaded=data.get("loaded", {}),
                released_lsn=lsn_number(data["released_lsn"]) if data.get("released_lsn") else None,
            )
        except (ValueError, KeyError, TypeError) as error:
            raise CaptureError(f"{path} is not a capture record ({error})") from None


@dataclass
class Layout:
    output: Path
    target: S3Target
    tables: dict[str, Table]

    def folder(self, table: str, moment: datetime) -> Path:
        return self.output / SCHEMA / table / self.target.partition(moment)

    def capture_files(self) -> list[Path]:
        base = self.output / SCHEMA
        return [path for path in base.rglob("*") if path.is_file()] if base.exists() else []


def lock_folder(output: Path):
    """An exclusive lock on the folder for as long as this process lives."""
    output.mkdir(parents=True, exist_ok=True)
    handle = (output / LOCK_FILE).open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise CaptureError(
            f"another cdc_tail is writing into {output}: one process per folder"
        ) from None
    return handle


def remove_unconfirmed(layout: Layout, flushed_lsn: int) -> int:
    """Delete what a batch beyond the confirmed point left behind (its files are written again,
    under the same names): temporary files, and change files ending after `flushed_lsn`."""
    removed = 0
    for path in layout.capture_files():
        span = change_range(path.name)
        if path.name.endswith(PARTIAL) or (span is not None and span[1] > flushed_lsn):
            path.unlink()
            removed += 1
    return removed


# --- connections ---------------------------------------------------------------------------


def session_params(params: dict) -> dict:
    """Connection parameters (Django's, less its own cursor class) with a UTC, ISO session:
    timestamps print one way everywhere."""
    options = " ".join(part for part in (params.get("options"), SESSION_OPTIONS) if part)
    plain = {key: value for key, value in params.items() if key != "cursor_factory"}
    return {**plain, "options": options}


def friendly(error: psycopg2.Error, *, slot: str, params: dict) -> CaptureError | None:
    """The errors a user can fix, as one line; None for a lost connection or anything else."""
    code = getattr(error, "pgcode", None)
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    user = params.get("user", "the user")
    if code == "55006":
        return CaptureError(
            f"slot {slot} is being read by another process ({message}): one reader per slot; "
            "stop the other one, or use another --slot"
        )
    if code == "53400":
        return CaptureError(
            "all replication slots are in use: drop one nobody reads (`manage.py "
            "check_replication` lists them; `manage.py setup_replication --drop --slot NAME`) "
            "or raise max_replication_slots"
        )
    if code == "53300":
        return CaptureError("all WAL senders are busy: raise max_wal_senders, or stop a reader")
    if code == "42501":
        return CaptureError(
            f"{user} may not read replication slots: ALTER ROLE {user} WITH REPLICATION "
            f"(on RDS/Aurora: GRANT rds_replication TO {user})"
        )
    if code == "42704":
        return CaptureError(f"slot {slot} does not exist ({message})")
    return None


def connection_lost(error: BaseException) -> bool:
    """A server that went away: no SQLSTATE at all (libpq gave up on the socket; a restart
    mid-stream shows as `no COPY in progress`), or a connection (08) or shutdown (57) class."""
    code = getattr(error, "pgcode", None)
    return code is None or code[:2] in ("08", "57")


def replication_connection(params: dict):
    return psycopg2.connect(
        **session_params(params),
        connection_factory=psycopg2.extras.LogicalReplicationConnection,
    )


def slot_state(params: dict, slot: str) -> tuple[str | None, int | None]:
    """(plugin, confirmed flush LSN) of the slot; (None, None) if there is none."""
    with psycopg2.connect(**session_params(params)) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT plugin, confirmed_flush_lsn::text FROM pg_replication_slots "
            "WHERE slot_name = %s",
            [slot],
        )
        row = cursor.fetchone()
    connection.close()
    if row is None:
        return None, None
    return row[0], lsn_number(row[1]) if row[1] else None


def current_wal_lsn(params: dict) -> int:
    with psycopg2.connect(**session_params(params)) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()::text")
        lsn = cursor.fetchone()[0]
    connection.close()
    return lsn_number(lsn)


def read_tables(params: dict) -> dict[str, Table]:
    with psycopg2.connect(**session_params(params)) as connection, connection.cursor() as cursor:
        tables = read_schema(cursor, measure_lobs=False)
    connection.close()
    return {table.name: table for table in tables}


# --- the full load -------------------------------------------------------------------------


def full_load(params: dict, slot: str, layout: Layout) -> Capture:
    """Create the slot and, from the snapshot it exports, write every core table's LOAD files
    (split at MaxFileSize), read through a server-side cursor: memory stays flat however big
    the tables are. Full-load rows carry the moment before the slot existed, so every change
    captured after the snapshot is stamped at or after them."""
    marker = layout.output / LOAD_MARKER
    write_durably(marker, slot.encode())
    replication = replication_connection(params)
    try:
        with psycopg2.connect(**session_params(params)) as clock, clock.cursor() as cursor:
            cursor.execute("SELECT clock_timestamp()::text")
            started = utc_timestamp(cursor.fetchone()[0])
        clock.close()
        with replication.cursor() as cursor:
            cursor.execute(f"CREATE_REPLICATION_SLOT {slot} LOGICAL test_decoding EXPORT_SNAPSHOT")
            _, consistent_point, snapshot, _ = cursor.fetchone()
        reader = psycopg2.connect(**session_params(params))
        try:
            reader.set_session(isolation_level="REPEATABLE READ", readonly=True)
            with reader.cursor() as cursor:
                cursor.execute("SET TRANSACTION SNAPSHOT %s", [snapshot])
            loaded = {
                name: load_table(reader, table, layout, started)
                for name, table in layout.tables.items()
            }
            reader.rollback()
        finally:
            reader.close()
    finally:
        replication.close()
    capture = Capture(
        slot=slot,
        target=layout.target,
        snapshot_lsn=lsn_number(consistent_point),
        loaded_at=started,
        flushed_lsn=lsn_number(consistent_point),
        loaded=loaded,
        released_lsn=lsn_number(consistent_point),
    )
    capture.save(layout.output)
    marker.unlink()
    fsync_folder(layout.output)
    return capture


def load_table(reader, table: Table, layout: Layout, started: str) -> int:
    columns = ", ".join(f'"{column.name}"::text' for column in table.columns)
    stamps = [is_timestamp(column.type) for column in table.columns]
    limit = layout.target.max_file_size * 1024
    moment = datetime.fromisoformat(started + "+00:00")
    folder = layout.folder(table.name, moment)
    number, writer, rows = 0, None, 0
    with reader.cursor(name=f"load_{table.name}") as cursor:
        cursor.itersize = FULL_LOAD_FETCH
        cursor.execute(f'SELECT {columns} FROM {SCHEMA}."{table.name}" ORDER BY id')
        for record in cursor:
            if writer is None:
                number += 1
                writer = FileWriter(folder / layout.target.load_name(number), table, layout.target)
            values = [
                utc_timestamp(value) if stamp and value is not None else value
                for value, stamp in zip(record, stamps, strict=True)
            ]
            writer.write(["I", started, *values, LOAD_SEQUENCE])
            rows += 1
            if writer.bytes >= limit:
                writer.close()
                fsync_folder(folder)
                crash_point("between-load-files")
                writer = None
    if writer is not None:
        writer.close()
        fsync_folder(folder)
    return rows


# --- transactions, batches -----------------------------------------------------------------


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
    files: int = 0
    unchanged_lobs: dict[str, int] = field(default_factory=dict)  # written as NULL, per table
    loaded: dict[str, int] | None = None  # rows per table, if a full load ran

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
        self.started = time.monotonic()
        self.staging = layout.output / ".staging"
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
            self.staging.mkdir(exist_ok=True)
            path = self.staging / f"{table}{self.layout.target.suffix}"
            writer = self.writers[table] = FileWriter(
                path, self.layout.tables[table], self.layout.target
            )
        writer.write(row)

    def committed(self, lsn: int, moment: datetime) -> None:
        if self.first_lsn is None:
            self.first_lsn, self.first_commit = lsn, moment
            self.started = time.monotonic()
        self.last_lsn = lsn

    def finish(self) -> int:
        """Give every file its name in its date folder, durably; returns the files written."""
        name = self.layout.target.change_name(self.first_commit, self.first_lsn, self.last_lsn)
        folders = set()
        for count, (table, writer) in enumerate(sorted(self.writers.items())):
            staged = writer.close()
            folder = self.layout.folder(table, self.first_commit)
            folder.mkdir(parents=True, exist_ok=True)
            staged.rename(folder / name)
            folders.add(folder)
            if count == 0:
                crash_point("between-batch-files")
        crash_point("before-folder-sync")
        for folder in folders:
            fsync_folder(folder)
        return len(self.writers)

    def discard(self) -> None:
        for writer in self.writers.values():
            writer.discard()
        self.writers.clear()


def change_row(
    columns: list[tuple[str, bool]], change: Change, committed: str, sequence: str, totals: Totals
) -> list[str | None]:
    """A file row from a change; `columns` is the table's (name, is a timestamp) in order."""
    values = change.values
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
    ):
        self.params = params
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

    def read(self, cursor, until: int | None) -> None:
        """Until caught up with `until` (or, following, until asked to stop), between
        transactions: a transaction is never cut."""
        batch = Batch(self.layout) if self.layout else None
        buffer, begin_xid, last_request = None, None, 0.0
        try:
            while True:
                message = cursor.read_message()
                if message is None:
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
                        cursor.send_feedback(flush_lsn=lsn, write_lsn=lsn)
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
                    if self.should_stop() or (until is not None and lsn >= until):
                        break
                elif buffer is not None:
                    buffer.add(payload)
            if batch is not None:
                self.flush(cursor, batch)
        except BaseException:
            if batch is not None:
                batch.discard()
            raise
        finally:
            if buffer is not None:
                buffer.close()

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
            self.totals.files += batch.finish()
            self.capture.flushed_lsn = batch.last_lsn
            crash_point("before-capture-record")
            self.capture.save(self.layout.output)
            crash_point("before-feedback")
            cursor.send_feedback(flush_lsn=batch.last_lsn, write_lsn=batch.last_lsn, force=True)
        return Batch(self.layout)


# --- start, run, reconnect -----------------------------------------------------------------


def prepare(
    params: dict, *, slot: str, output: Path, target: S3Target | None, batch_seconds: int | None
) -> tuple[Layout, Capture, bool]:
    """Check the folder against the slot; with neither, run the full load with `target` (or
    the default settings). A folder keeps the settings it was started with. Returns the
    layout, the capture record, and whether the full load ran now."""
    plugin, confirmed = slot_state(params, slot)
    if plugin not in (None, "test_decoding"):
        raise CaptureError(f"slot {slot} uses {plugin}; cdc_tail reads test_decoding slots")
    capture = Capture.load(output)
    if (output / LOAD_MARKER).exists():
        # A full load was cut short: start it again from a new slot.
        if plugin is not None:
            drop_slot(params, slot)
        shutil.rmtree(output / SCHEMA, ignore_errors=True)
        (output / LOAD_MARKER).unlink()
        (output / CAPTURE_FILE).unlink(missing_ok=True)
        plugin, capture = None, None
    if capture is not None:
        if capture.slot != slot:
            raise CaptureError(f"{output} holds a capture of slot {capture.slot}, not {slot}")
        if target is not None and target != capture.target:
            raise CaptureError(
                f"{output} was started with other settings ({capture.target.data_format} "
                "files): a capture keeps its settings; leave out --data-format and "
                "--s3-settings, or start a new folder"
            )
        target = capture.target
    target = target or S3Target()
    if batch_seconds:
        target = replace(target, cdc_max_batch_interval=batch_seconds)
    layout = Layout(output, target, read_tables(params))
    if plugin is None:
        if capture is not None:
            raise CaptureError(
                f"slot {slot} is gone, so the changes since {output} was last written are lost: "
                "start again in an empty folder"
            )
        if any(layout.capture_files()):
            raise CaptureError(
                f"{output} holds files but no {CAPTURE_FILE}: start in an empty folder"
            )
        return layout, full_load(params, slot, layout), True
    if capture is None:
        raise CaptureError(
            f"slot {slot} already exists but {output} has no capture: use another --slot, or "
            f"drop it (`manage.py setup_replication --drop --slot {slot}`) to start with a full "
            "load"
        )
    released = capture.released_lsn
    if released is not None and confirmed is not None and confirmed > released:
        raise CaptureError(
            f"slot {slot} was read while cdc_tail was not running (it moved from "
            f"{lsn_text(released)} to {lsn_text(confirmed)}): another reader consumed changes "
            f"that {output} will never have; start again in an empty folder with a new slot"
        )
    remove_unconfirmed(layout, capture.flushed_lsn)
    capture.released_lsn = None
    capture.save(output)
    return layout, capture, False


def drop_slot(params: dict, slot: str) -> None:
    with psycopg2.connect(**session_params(params)) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT pg_drop_replication_slot(%s)", [slot])
    connection.close()


def ensure_terminal_slot(params: dict, slot: str) -> None:
    plugin, _ = slot_state(params, slot)
    if plugin not in (None, "test_decoding"):
        raise CaptureError(f"slot {slot} uses {plugin}; cdc_tail reads test_decoding slots")
    if plugin is None:
        with psycopg2.connect(**session_params(params)) as connection, connection.cursor() as cur:
            cur.execute("SELECT pg_create_logical_replication_slot(%s, 'test_decoding')", [slot])
        connection.close()


def run_capture(
    params: dict,
    *,
    slot: str,
    output: Path | None,
    target: S3Target | None = None,
    batch_seconds: int | None = None,
    follow: bool = False,
    should_stop: Callable[[], bool] = lambda: False,
    on_transaction: Callable[[Transaction], None] | None = None,
    on_note: Callable[[str], None] | None = None,
) -> Totals:
    """Drain the slot (with `follow`, keep going until `should_stop()`), into `output` in DMS's
    layout (a new folder with `target`'s settings, or the default ones; `batch_seconds`
    overrides CdcMaxBatchInterval), or to `on_transaction`. A lost connection or a server
    restart is one note, a wait, and a reconnect; errors the user can fix are a CaptureError."""
    totals = Totals()
    lock = lock_folder(output) if output else None
    outage = 0
    try:
        while True:
            try:
                layout = capture = None
                if output is not None:
                    layout, capture, loaded_now = prepare(
                        params,
                        slot=slot,
                        output=output,
                        target=target,
                        batch_seconds=batch_seconds,
                    )
                    if loaded_now:
                        totals.loaded = capture.loaded
                else:
                    ensure_terminal_slot(params, slot)
                if outage and on_note:
                    on_note(f"reconnected to PostgreSQL after {outage} tries; carrying on")
                    outage = 0
                Stream(
                    params,
                    slot=slot,
                    layout=layout,
                    capture=capture,
                    follow=follow,
                    should_stop=should_stop,
                    on_transaction=on_transaction,
                    totals=totals,
                ).run()
                if capture is not None:
                    capture.released_lsn = slot_state(params, slot)[1]
                    capture.save(output)
                return totals
            except psycopg2.Error as error:
                readable = friendly(error, slot=slot, params=params)
                if readable is not None:
                    raise readable from None
                if not connection_lost(error):
                    raise
                reason = (str(error).strip().splitlines() or ["connection closed"])[0]
                if on_note and not outage:  # one line per outage, not per try
                    on_note(f"lost the connection to PostgreSQL ({reason}); reconnecting")
                if not wait_before_retry(outage, should_stop):
                    return totals
                outage += 1
            except OSError as error:
                if error.errno == errno.ENOSPC:
                    raise CaptureError(
                        f"no space left on the disk holding {output}: free some and run cdc_tail "
                        "again; nothing past the last whole batch was confirmed to the slot"
                    ) from None
                raise CaptureError(
                    f"could not write into {output} ({error.strerror}: {error.filename}): fix it "
                    "and run cdc_tail again; nothing past the last whole batch was confirmed"
                ) from None
    finally:
        if lock is not None:
            lock.close()
