"""The full load: a new slot, and the LOAD files from the snapshot it exports."""

from datetime import datetime

import psycopg2

from core.capture.files import FileWriter, is_timestamp, utc_timestamp
from core.capture.record import Capture, table_record
from core.capture.target import LOAD_SEQUENCE, lsn_number
from core.replication.connections import replication_connection
from core.replication.folder import LOAD_MARKER, Layout, crash_point
from core.source.catalog import SCHEMA, Table
from core.source.sessions import session, session_params

FULL_LOAD_FETCH = 5_000


def full_load(params: dict, slot: str, layout: Layout) -> Capture:
    """Create the slot and, from the snapshot it exports, write every core table's LOAD files
    (split at MaxFileSize), read through a server-side cursor: memory stays flat however big
    the tables are. Full-load rows carry the moment before the slot existed, so every change
    captured after the snapshot is stamped at or after them."""
    output = layout.output
    output.write(LOAD_MARKER, slot.encode())
    replication = replication_connection(params)
    try:
        with session(params) as cursor:
            cursor.execute("SELECT clock_timestamp()::text")
            started = utc_timestamp(cursor.fetchone()[0])
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
        tables={name: table_record(table) for name, table in layout.tables.items()},
        # Held by this run from here on: a run killed after its full load has let go of
        # nothing, so the next one must not take the slot's progress for another reader's.
        released_lsn=None,
    )
    capture.save(output)
    output.delete([LOAD_MARKER])
    output.settle([LOAD_MARKER])
    return capture


def load_table(reader, table: Table, layout: Layout, started: str) -> int:
    columns = ", ".join(f'"{column.name}"::text' for column in table.columns)
    stamps = [is_timestamp(column.type) for column in table.columns]
    limit = layout.target.max_file_size * 1024
    moment = datetime.fromisoformat(started + "+00:00")
    spool = layout.spool / f"{table.name}-load.partial"
    number, writer, rows = 0, None, 0

    def publish() -> None:
        key = layout.key(table.name, moment, layout.target.load_name(number))
        layout.output.publish(writer.close(), key)
        layout.output.settle([key])

    with reader.cursor(name=f"load_{table.name}") as cursor:
        cursor.itersize = FULL_LOAD_FETCH
        cursor.execute(f'SELECT {columns} FROM {SCHEMA}."{table.name}" ORDER BY id')
        for record in cursor:
            if writer is None:
                number += 1
                writer = FileWriter(spool, table, layout.target, durable=layout.output.is_local)
            values = [
                utc_timestamp(value) if stamp and value is not None else value
                for value, stamp in zip(record, stamps, strict=True)
            ]
            writer.write(["I", started, *values, LOAD_SEQUENCE])
            rows += 1
            if writer.bytes >= limit:
                publish()
                crash_point("between-load-files")
                writer = None
    if writer is not None:
        publish()
    return rows
