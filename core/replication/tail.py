"""cdc_tail: a logical slot read with test_decoding (the plugin DMS uses) over the streaming
replication protocol, written in DMS's S3 layout (see `target.py` for the settings and names):

    <DIR>/public/<table>/<date>/LOAD00000001.parquet   the full load, from the slot's snapshot
    <DIR>/public/<table>/<date>/<time>-<first LSN>-<last LSN>.parquet   a batch of changes
    <DIR>/capture.json                                  slot, settings, what is confirmed

Exactly once, through any fault: a batch's files are written to temporary names, fsynced, given
their names (derived from the batch's commit LSN range) and their folders fsynced; then
capture.json records the batch's last commit LSN; only then is the slot told (flush feedback)
that it may let go of those changes. A restart deletes any file of a batch beyond what
capture.json records, skips the transactions it records, and writes the rest again under the
same names. One process per folder (a lock file) and one reader per slot (PostgreSQL refuses a
second).

The parts: folder.py (the record, the lock), connections.py, full_load.py, stream.py (batches
of files, confirmed to the slot); this module checks a folder against its slot and runs them,
reconnecting after a lost connection.
"""

import errno
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import psycopg2

from core.capture.record import CAPTURE_FILE, Capture, table_record
from core.capture.target import S3Target, lsn_text
from core.errors import CaptureError, StorageUnreachable
from core.replication.connections import connection_lost, friendly, read_tables, slot_state
from core.replication.folder import LOAD_MARKER, Layout, remove_unconfirmed
from core.replication.full_load import full_load
from core.replication.stream import SchemaChanged, Stream, Totals, Transaction
from core.source.backoff import wait_before_retry
from core.source.catalog import SCHEMA
from core.source.sessions import session
from core.storage import Location, Lock, S3Location, registry

__all__ = ["CaptureError", "Totals", "Transaction", "run_capture"]

# A drain (no --follow) gives up on an unreachable server after this many tries (about 3.5 s
# of waiting); following, it waits for it as long as it takes.
TRIES_WHEN_DRAINING = 3


def prepare(
    params: dict,
    *,
    slot: str,
    output: Location,
    spool: Path,
    target: S3Target | None,
    batch_seconds: int | None,
) -> tuple[Layout, Capture, bool]:
    """Check the location against the slot; with neither, run the full load with `target` (or
    the default settings). A capture keeps the settings it was started with. Returns the
    layout, the capture record, and whether the full load ran now."""
    plugin, confirmed = slot_state(params, slot)
    if plugin not in (None, "test_decoding"):
        raise CaptureError(f"slot {slot} uses {plugin}; cdc_tail reads test_decoding slots")
    capture = Capture.load(output)
    if output.exists(LOAD_MARKER):
        # A full load was cut short: start it again from a new slot.
        if plugin is not None:
            drop_slot(params, slot)
        output.delete([file.key for file in output.files(SCHEMA)])
        output.delete([LOAD_MARKER, CAPTURE_FILE])
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
    layout = Layout(output, target, read_tables(params), spool)
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
            f"drop it (`bin/manage setup_replication --drop --slot {slot}`) to start with a full "
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
    # Columns added since (DMS, with capture_ddls off, writes them into the later files):
    # the capture's schema is the newest, and older files lack the added columns.
    capture.tables = {name: table_record(table) for name, table in layout.tables.items()}
    capture.save(output)
    return layout, capture, False


def drop_slot(params: dict, slot: str) -> None:
    with session(params) as cursor:
        cursor.execute("SELECT pg_drop_replication_slot(%s)", [slot])


def ensure_terminal_slot(params: dict, slot: str, *, create: bool) -> bool:
    """The slot to show changes from; made only if asked (`create`), since a slot nobody reads
    keeps WAL until the disk fills: a mistyped name must not make one. True if it was made."""
    plugin, _ = slot_state(params, slot)
    if plugin not in (None, "test_decoding"):
        raise CaptureError(f"slot {slot} uses {plugin}; cdc_tail reads test_decoding slots")
    if plugin is not None:
        return False
    if not create:
        with session(params) as cursor:
            cursor.execute("SELECT slot_name FROM pg_replication_slots ORDER BY 1")
            existing = ", ".join(name for (name,) in cursor.fetchall()) or "none"
        raise CaptureError(
            f"there is no slot {slot} (slots: {existing}): check --slot, or add --create-slot "
            "to make it (it keeps WAL until you drop it: `bin/manage setup_replication --drop "
            f"--slot {slot}`)"
        )
    with session(params) as cursor:
        cursor.execute("SELECT pg_create_logical_replication_slot(%s, 'test_decoding')", [slot])
    return True


def run_capture(
    params: dict,
    *,
    slot: str,
    output: Location | None,
    target: S3Target | None = None,
    batch_seconds: int | None = None,
    follow: bool = False,
    should_stop: Callable[[], bool] = lambda: False,
    on_transaction: Callable[[Transaction], None] | None = None,
    on_note: Callable[[str], None] | None = None,
    create_slot: bool = False,
    on_progress: Callable[[Totals], None] | None = None,
) -> Totals:
    """Drain the slot (with `follow`, keep going until `should_stop()`), into `output` in DMS's
    layout (a new capture with `target`'s settings, or the default ones; `batch_seconds`
    overrides CdcMaxBatchInterval), or to `on_transaction`. A lost connection or a server
    restart is one note, a wait, and a reconnect (following, so is an S3 store out of reach);
    errors the user can fix are a CaptureError or a StorageError. Without `output`, a missing
    slot is made only with `create_slot`; a new capture makes its own (and says so). The
    registry of places (the pipeline page's) records the capture."""
    run = CaptureRun(
        params,
        slot=slot,
        output=output,
        target=target,
        batch_seconds=batch_seconds,
        follow=follow,
        should_stop=should_stop,
        on_transaction=on_transaction,
        on_note=on_note or (lambda line: None),
        create_slot=create_slot,
        on_progress=on_progress,
    )
    if output is None:
        return run.loop(spool=None, lock=None)
    output.check()  # a missing bucket or refused credentials: one line, nothing written
    lock = output.lock("cdc_tail")
    registry.record_capture(output, slot)
    try:
        if isinstance(output, S3Location):
            output.abort_uploads()  # left by a cdc_tail that died mid-upload
        with output.spooling() as spool:
            return run.loop(spool=spool, lock=lock)
    finally:
        lock.release()


@dataclass
class CaptureRun:
    params: dict
    slot: str
    output: Location | None
    target: S3Target | None
    batch_seconds: int | None
    follow: bool
    should_stop: Callable[[], bool]
    on_transaction: Callable[[Transaction], None] | None
    on_note: Callable[[str], None]
    create_slot: bool = False
    on_progress: Callable[[Totals], None] | None = None
    totals: Totals = field(default_factory=Totals)

    def loop(self, *, spool: Path | None, lock: Lock | None) -> Totals:
        """Stream until done, starting again from the last durable batch after an outage or
        a schema change."""
        outage = 0
        schema_seen: dict[str, list[str]] = {}  # a table's columns when a change outgrew them
        while True:
            layout = None
            try:
                layout, capture = self.prepared(spool)
                if outage and self.follow:
                    self.on_note(f"reconnected after {outage} tries; carrying on")
                outage = 0
                Stream(
                    self.params,
                    slot=self.slot,
                    layout=layout,
                    capture=capture,
                    follow=self.follow,
                    should_stop=self.should_stop,
                    on_transaction=self.on_transaction,
                    totals=self.totals,
                    lock=lock,
                    on_progress=self.on_progress,
                ).run()
                if capture is not None:
                    capture.released_lsn = slot_state(self.params, self.slot)[1]
                    capture.save(self.output)
                return self.totals
            except SchemaChanged as changed:
                table = str(changed)
                columns = [c.name for c in layout.tables[table].columns] if layout else []
                if schema_seen.get(table) == columns:  # read anew, and still not the change's
                    raise CaptureError(
                        f"{table}'s changes carry columns the table no longer has (added and "
                        "dropped again): start a new capture in an empty folder"
                    ) from None
                schema_seen[table] = columns
                self.on_note(f"{table} has new columns: carrying on with the new schema")
            except psycopg2.Error as error:
                readable = friendly(error, slot=self.slot, params=self.params)
                if readable is not None:
                    raise readable from None
                if not connection_lost(error):
                    raise
                reason = (str(error).strip().splitlines() or ["connection closed"])[0]
                if not self.follow and outage >= TRIES_WHEN_DRAINING:
                    raise CaptureError(
                        f"PostgreSQL is out of reach ({reason}), {outage + 1} tries: is it "
                        "running? (`make db` starts the local one); nothing past the last "
                        "whole batch was confirmed to the slot"
                    ) from None
                if self.follow and not outage:  # one line per outage, not per try
                    self.on_note(f"lost the connection to PostgreSQL ({reason}); reconnecting")
                if not wait_before_retry(outage, self.should_stop):
                    return self.totals
                outage += 1
            except StorageUnreachable as error:
                if not self.follow:
                    raise
                if not outage:
                    self.on_note(f"{error}; trying again")
                if not wait_before_retry(outage, self.should_stop):
                    return self.totals
                outage += 1
            except OSError as error:
                where = self.output if self.output is not None and self.output.is_local else spool
                if error.errno == errno.ENOSPC:
                    raise CaptureError(
                        f"no space left on the disk holding {where}: free some and run cdc_tail "
                        "again; nothing past the last whole batch was confirmed to the slot"
                    ) from None
                raise CaptureError(
                    f"could not write into {where} ({error.strerror}: {error.filename}): fix it "
                    "and run cdc_tail again; nothing past the last whole batch was confirmed"
                ) from None

    def prepared(self, spool: Path | None) -> tuple[Layout | None, Capture | None]:
        if self.output is None:
            if ensure_terminal_slot(self.params, self.slot, create=self.create_slot):
                self.on_note(
                    f"made slot {self.slot}: it keeps WAL until you drop it (`bin/manage "
                    f"setup_replication --drop --slot {self.slot}`)"
                )
            return None, None
        layout, capture, loaded_now = prepare(
            self.params,
            slot=self.slot,
            output=self.output,
            spool=spool,
            target=self.target,
            batch_seconds=self.batch_seconds,
        )
        if loaded_now:
            self.totals.loaded = capture.loaded
            self.totals.load_files = len(layout.capture_files())  # all LOAD files, just written
            if self.follow:  # a drain says so in its summary, as it ends
                self.on_note(
                    f"full load: {sum(capture.loaded.values()):,} rows in "
                    f"{self.totals.load_files:,} files from slot {self.slot}'s snapshot, into "
                    f"{self.output}"
                )
            self.on_note(
                f"made slot {self.slot} for {self.output}: it keeps WAL until you drop it "
                f"(`bin/manage setup_replication --drop --slot {self.slot}`)"
            )
        return layout, capture
