"""What DMS will see: a logical slot read with test_decoding, written in DMS's S3 layout.

Layout under the output folder, as a DMS S3 target with IncludeOpForFullLoad and a timestamp
column writes it:
    public/<table>/LOAD00000001.csv|parquet      the full load, taken from the slot's snapshot
    public/<table>/<YYYYMMDD-HHMMSSffffff>-<n>.csv|parquet   changes, one file per table per batch
Every row starts with `Op` (I, U or D) and `dms_commit_ts`, then the table's columns. CSV files
carry a header; an empty unquoted field is NULL, a quoted one is text.

Nothing is lost or written twice if the process dies: a batch is peeked, written and fsynced,
recorded in `.cdc_state.json`, and only then consumed from the slot. A restart skips the
transactions the state file says were written already.
"""

import csv
import io
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from uuid import UUID

import psycopg2
import psycopg2.extras

from core.replication import SCHEMA
from core.replication.decoding import Change, Transaction, transactions, typed
from core.replication.export import Table, read_schema
from core.replication.setup import slot_plugin

TIMESTAMP_COLUMN = "dms_commit_ts"
STATE_FILE = ".cdc_state.json"
DECODING_OPTIONS = ("include-timestamp", "on")


class CaptureError(Exception):
    """One line for the user."""


# --- values ---------------------------------------------------------------------------------


def base_type(postgres_type: str) -> str:
    """numeric(12,2) -> numeric; character varying(80) -> character varying."""
    return postgres_type.split("(")[0]


def as_text(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return str(value)


def write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    """RFC 4180 CSV in which NULL is an empty unquoted field and every text value is quoted."""
    lines = [",".join(header)]
    for row in rows:
        fields = []
        for value in row:
            text = as_text(value)
            fields.append("" if text is None else '"' + text.replace('"', '""') + '"')
        lines.append(",".join(fields))
    write_durably(path, ("\n".join(lines) + "\n").encode())


def read_csv(path: Path) -> Iterator[dict[str, str | None]]:
    with path.open(newline="") as handle:
        header = handle.readline().rstrip("\n").split(",")
        text = handle.read()
    reader = csv.reader(io.StringIO(text), strict=True)
    # csv.reader cannot tell "" from an empty field; find the NULLs ourselves.
    for fields, raw in zip(reader, split_records(text), strict=True):
        nulls = null_positions(raw)
        yield {
            name: None if index in nulls else value
            for index, (name, value) in enumerate(zip(header, fields, strict=True))
        }


def split_records(text: str) -> Iterator[str]:
    record, quoted = [], False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == "\n" and not quoted:
            yield "".join(record)
            record = []
        else:
            record.append(char)


def null_positions(record: str) -> set[int]:
    nulls, index, quoted, length = set(), 0, False, 0
    for char in record + ",":
        if char == '"':
            quoted = not quoted
            length += 1
        elif char == "," and not quoted:
            if length == 0:
                nulls.add(index)
            index, length = index + 1, 0
        else:
            length += 1
    return nulls


def write_durably(path: Path, data: bytes) -> None:
    """Write to a temporary name, fsync, then rename: a file is either whole or absent."""
    partial = path.with_name(path.name + ".partial")
    with partial.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    partial.rename(path)


def arrow_schema(table: Table):
    import pyarrow as pa

    def arrow_type(postgres_type: str):
        kind = base_type(postgres_type)
        if kind == "numeric" and "(" in postgres_type:
            precision, scale = postgres_type[len("numeric(") : -1].split(",")
            return pa.decimal128(int(precision), int(scale))
        return {
            "timestamp with time zone": pa.timestamp("us", tz="UTC"),
            "timestamp without time zone": pa.timestamp("us"),
            "date": pa.date32(),
            "integer": pa.int32(),
            "smallint": pa.int16(),
            "bigint": pa.int64(),
            "boolean": pa.bool_(),
        }.get(kind, pa.string())

    fields = [
        pa.field("Op", pa.string()),
        pa.field(TIMESTAMP_COLUMN, pa.timestamp("us", tz="UTC")),
    ]
    fields += [pa.field(column.name, arrow_type(column.type)) for column in table.columns]
    return pa.schema(fields)


def write_parquet(path: Path, table: Table, rows: list[list]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = arrow_schema(table)
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in schema]
    arrays = []
    for field, values in zip(schema, columns, strict=True):
        if pa.types.is_string(field.type):
            values = [
                value if isinstance(value, str) or value is None else as_text(value)
                for value in values
            ]
        arrays.append(pa.array(list(values), type=field.type))
    buffer = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_arrays(arrays, schema=schema), buffer)
    write_durably(path, buffer.getvalue().to_pybytes())


def read_parquet(path: Path) -> Iterator[dict]:
    import pyarrow.parquet as pq

    yield from pq.read_table(path).to_pylist()


# --- files ----------------------------------------------------------------------------------


@dataclass
class Layout:
    output: Path
    data_format: str  # csv or parquet
    tables: dict[str, Table]

    def folder(self, table: str) -> Path:
        folder = self.output / SCHEMA / table
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def write(self, table: str, name: str, rows: list[list]) -> Path:
        path = self.folder(table) / f"{name}.{self.data_format}"
        if self.data_format == "parquet":
            write_parquet(path, self.tables[table], rows)
        else:
            header = ["Op", TIMESTAMP_COLUMN, *[c.name for c in self.tables[table].columns]]
            write_csv(path, header, rows)
        return path

    def row(self, table: str, op: str, committed_at: datetime, values: dict) -> list:
        return [op, committed_at, *[values.get(c.name) for c in self.tables[table].columns]]


def layouts(cursor, output: Path, data_format: str) -> Layout:
    return Layout(
        output,
        data_format,
        {table.name: table for table in read_schema(cursor, measure_lobs=False)},
    )


def read_state(output: Path) -> dict:
    path = output / STATE_FILE
    return json.loads(path.read_text()) if path.exists() else {}


def write_state(output: Path, state: dict) -> None:
    write_durably(output / STATE_FILE, json.dumps(state, indent=2).encode())


# --- the slot -------------------------------------------------------------------------------


def full_load(connection_params: dict, slot: str, layout: Layout) -> dict[str, int]:
    """Create `slot` and, from the snapshot it exports, write every core table's LOAD file:
    the full load and the changes then meet exactly, as they do in DMS."""
    replication = psycopg2.connect(
        **connection_params, connection_factory=psycopg2.extras.LogicalReplicationConnection
    )
    try:
        with replication.cursor() as cursor:
            cursor.execute(f"CREATE_REPLICATION_SLOT {slot} LOGICAL test_decoding EXPORT_SNAPSHOT")
            _, _, snapshot, _ = cursor.fetchone()
        reader = psycopg2.connect(**connection_params)
        try:
            with reader.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                cursor.execute("SET TRANSACTION SNAPSHOT %s", [snapshot])
                cursor.execute("SELECT now()")
                loaded_at = cursor.fetchone()[0]
                counts = {}
                for name, table in layout.tables.items():
                    columns = ", ".join(f'"{c.name}"' for c in table.columns)
                    cursor.execute(f"SELECT {columns} FROM {SCHEMA}.{name} ORDER BY id")
                    rows = [
                        ["I", loaded_at, *live_values(table, record)]
                        for record in cursor.fetchall()
                    ]
                    layout.write(name, "LOAD00000001", rows)
                    counts[name] = len(rows)
            reader.rollback()
        finally:
            reader.close()
    finally:
        replication.close()
    return counts


def live_values(table: Table, record: tuple) -> list:
    """A row as psycopg2 returns it, typed as the decoder types changes (UUIDs as UUID, …)."""
    return [
        UUID(value) if column.type == "uuid" and isinstance(value, str) else value
        for column, value in zip(table.columns, record, strict=True)
    ]


@dataclass
class Batch:
    transactions: list[Transaction]
    rows: int  # rows the slot returned, to consume exactly these


def peek(cursor, slot: str, limit: int) -> Batch:
    cursor.execute(
        "SELECT lsn::text, xid::text, data FROM pg_logical_slot_peek_changes(%s, NULL, %s, %s, %s)",
        [slot, limit, *DECODING_OPTIONS],
    )
    rows = cursor.fetchall()
    return Batch(transactions(rows), len(rows))


def consume(cursor, slot: str, rows: int) -> None:
    """Move the slot past the `rows` peeked: whole transactions, so exactly those."""
    if rows:
        cursor.execute(
            "SELECT count(*) FROM pg_logical_slot_get_changes(%s, NULL, %s, %s, %s)",
            [slot, rows, *DECODING_OPTIONS],
        )


def lsn_value(lsn: str) -> int:
    high, low = lsn.split("/")
    return (int(high, 16) << 32) + int(low, 16)


def core_changes(transaction: Transaction, tables: dict[str, Table]) -> Iterator[Change]:
    for change in transaction.changes:
        if change.schema == SCHEMA and change.table in tables:
            yield change


def write_batch(layout: Layout, batch: Batch, state: dict) -> dict[str, int]:
    """Write the batch's changes (those not written before), one file per table."""
    done = lsn_value(state["last_commit_lsn"]) if state.get("last_commit_lsn") else -1
    per_table: dict[str, list[list]] = {}
    fresh = [t for t in batch.transactions if lsn_value(t.commit_lsn) > done]
    for transaction in fresh:
        for change in core_changes(transaction, layout.tables):
            per_table.setdefault(change.table, []).append(
                layout.row(change.table, change.op, transaction.committed_at, change.values)
            )
    if fresh:
        sequence = state.get("files", 0) + 1
        stamp = fresh[-1].committed_at.astimezone(UTC).strftime("%Y%m%d-%H%M%S%f")
        for table, rows in per_table.items():
            layout.write(table, f"{stamp}-{sequence:06d}", rows)
        state.update(files=sequence, last_commit_lsn=fresh[-1].commit_lsn)
        write_state(layout.output, state)
    return {table: len(rows) for table, rows in per_table.items()}


def tail(
    connection,
    *,
    slot: str,
    layout: Layout | None,
    on_transaction: Callable[[Transaction], None] | None = None,
    follow: bool = False,
    batch_changes: int = 5000,
    poll_seconds: float = 0.5,
    should_stop: Callable[[], bool] = lambda: False,
) -> dict[str, int]:
    """Drain the slot (and with `follow`, keep going until `should_stop()`), writing files
    into `layout` if given and passing each transaction to `on_transaction`."""
    totals: dict[str, int] = {}
    state = read_state(layout.output) if layout else {}
    with connection.cursor() as cursor:
        while not should_stop():
            batch = peek(cursor, slot, batch_changes)
            if layout is not None:
                for table, count in write_batch(layout, batch, state).items():
                    totals[table] = totals.get(table, 0) + count
            for transaction in batch.transactions:
                if on_transaction:
                    on_transaction(transaction)
                if layout is None:
                    for change in transaction.changes:
                        totals[change.table] = totals.get(change.table, 0) + 1
            consume(cursor, slot, batch.rows)
            if not batch.rows:
                if not follow:
                    break
                time.sleep(poll_seconds)
    return totals


def start(
    connection, connection_params: dict, *, slot: str, output: Path | None, data_format: str
) -> tuple[Layout | None, dict[str, int] | None]:
    """Make sure the slot exists; with an output folder, write the full load on first use."""
    with connection.cursor() as cursor:
        plugin = slot_plugin(cursor, slot)
        if plugin not in (None, "test_decoding"):
            raise CaptureError(f"slot {slot} uses {plugin}; cdc_tail reads test_decoding slots")
        layout = layouts(cursor, output, data_format) if output else None
    if layout is not None:
        state = read_state(layout.output)
        if state and state.get("slot") != slot:
            raise CaptureError(f"{output} holds a capture of slot {state.get('slot')}, not {slot}")
        if state and state.get("format") != data_format:
            raise CaptureError(
                f"{output} holds {state.get('format')} files; use that --data-format"
            )
        if plugin is None:
            if state:
                raise CaptureError(
                    f"slot {slot} is gone, so changes since {output} was written are lost: "
                    "start again in an empty folder"
                )
            loaded = full_load(connection_params, slot, layout)
            write_state(layout.output, {"slot": slot, "format": data_format, "files": 0})
            return layout, loaded
        if not state:
            raise CaptureError(
                f"slot {slot} already exists but {output} has no capture: use a new --slot, or "
                f"drop it (setup_replication --drop --slot {slot}) to start with a full load"
            )
        return layout, None
    if plugin is None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_create_logical_replication_slot(%s, 'test_decoding')", [slot])
    return None, None


# --- verification ---------------------------------------------------------------------------


def replay(layout: Layout) -> dict[str, dict]:
    """Apply the full load and then every change file in order: the lakehouse's view."""
    result: dict[str, dict] = {}
    reader = read_parquet if layout.data_format == "parquet" else read_csv
    for name, table in layout.tables.items():
        folder = layout.output / SCHEMA / name
        rows: dict = {}
        files = sorted(folder.glob(f"*.{layout.data_format}")) if folder.exists() else []
        for path in sorted(files, key=lambda p: (not p.name.startswith("LOAD"), p.name)):
            for record in reader(path):
                values = {
                    column.name: as_typed(column.type, record.get(column.name))
                    for column in table.columns
                }
                if record["Op"] == "D":
                    rows.pop(values["id"], None)
                else:
                    rows[values["id"]] = values
        result[name] = rows
    return result


def as_typed(postgres_type: str, value):
    """Text from a CSV file (or a Parquet string column) as the typed value it stands for."""
    if isinstance(value, str) and base_type(postgres_type) not in ("character varying", "text"):
        return typed(base_type(postgres_type), value)
    return value


def verify(connection, output: Path) -> dict[str, dict[str, int]]:
    """Per table: rows in the files, rows live, and how many differ (missing, extra, changed)."""
    state = read_state(output)
    if not state:
        raise CaptureError(f"{output} holds no capture (no {STATE_FILE})")
    with connection.cursor() as cursor:
        layout = layouts(cursor, output, state["format"])
        replayed = replay(layout)
        report = {}
        for name, table in layout.tables.items():
            columns = ", ".join(f'"{c.name}"' for c in table.columns)
            cursor.execute(f"SELECT {columns} FROM {SCHEMA}.{name}")
            live = {}
            for record in cursor.fetchall():
                values = dict(
                    zip([c.name for c in table.columns], live_values(table, record), strict=True)
                )
                values = {c.name: as_typed(c.type, values[c.name]) for c in table.columns}
                live[values["id"]] = values
            files = replayed.get(name, {})
            report[name] = {
                "replayed": len(files),
                "live": len(live),
                "missing": len(live.keys() - files.keys()),
                "extra": len(files.keys() - live.keys()),
                "changed": sum(files[key] != live[key] for key in live.keys() & files.keys()),
            }
    return report
