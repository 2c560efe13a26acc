"""Writes generated rows to PostgreSQL with COPY, and cleans the tables."""

import io
import json
import multiprocessing
import queue
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

from core.generation.rows import TABLE_ROWS


def _text(value: str) -> str:
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return (
            value.replace("\\", "\\\\")
            .replace("\t", "\\t")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
        )
    return value


def _uuid(value: UUID) -> str:
    # 32 hex digits, which PostgreSQL reads as a uuid: cheaper than str(), which adds dashes.
    return f"{value.int:032x}"


_FORMATTERS: dict[type, Callable[[object], str]] = {
    str: _text,
    UUID: _uuid,
    int: str,
    Decimal: str,
    datetime: datetime.isoformat,
    date: date.isoformat,
    bool: lambda value: "t" if value else "f",
    type(None): lambda value: "\\N",
    dict: lambda value: _text(json.dumps(value, separators=(",", ":"))),
}


def copy_value(value: object) -> str:
    """One value in PostgreSQL's COPY text format."""
    return _FORMATTERS[type(value)](value)


def copy_text(rows: Sequence[tuple]) -> str:
    """Rows in COPY text format. Timestamps repeat within a batch (created_at = updated_at, a
    day's orders), so each distinct one is formatted once."""
    formatters = _FORMATTERS
    timestamps: dict[datetime, str] = {}
    lines = []
    for row in rows:
        fields = []
        for value in row:
            kind = type(value)
            if kind is str:
                fields.append(_text(value))
            elif kind is datetime:
                text = timestamps.get(value)
                if text is None:
                    text = timestamps[value] = value.isoformat()
                fields.append(text)
            else:
                fields.append(formatters[kind](value))
        lines.append("\t".join(fields))
    lines.append("")
    return "\n".join(lines)


# Bytes psycopg2 hands to libpq per call (its default is 8 KiB).
COPY_CHUNK = 4 << 20
# Formatted batches waiting between the generating and the loading process.
PARALLEL_QUEUE = 8


def copy_formatted(cursor, table: str, text: str) -> float:
    """COPY rows already in COPY text format into `table`; returns the seconds it took."""
    started = time.perf_counter()
    columns = ", ".join(TABLE_ROWS[table]._fields)
    cursor.copy_expert(f"COPY {table} ({columns}) FROM STDIN", io.StringIO(text), size=COPY_CHUNK)
    return time.perf_counter() - started


def copy_rows(cursor, table: str, rows: Sequence[tuple]) -> float:
    """COPY `rows` (NamedTuples of the table's row type) into `table`; returns the seconds."""
    return copy_formatted(cursor, table, copy_text(rows)) if rows else 0.0


class RowSink:
    """Where generated rows go: counted, and (in subclasses) written."""

    def __init__(self, on_rows: Callable[[str, int], None] | None = None):
        self.counts: dict[str, int] = dict.fromkeys(TABLE_ROWS, 0)
        # Seconds spent formatting and COPYing each table's rows (what the benchmark reports).
        self.copy_seconds: dict[str, float] = dict.fromkeys(TABLE_ROWS, 0.0)
        self.on_rows = on_rows

    def write(self, table: str, rows: Sequence[tuple]) -> None:
        self.counts[table] += len(rows)
        if self.on_rows and rows:
            self.on_rows(table, len(rows))


class CopyWriter(RowSink):
    """COPYs each batch as it is written, into the transaction of `raw_connection`."""

    def __init__(self, raw_connection, on_rows: Callable[[str, int], None] | None = None):
        super().__init__(on_rows)
        self._connection = raw_connection

    def write(self, table: str, rows: Sequence[tuple]) -> None:
        if rows:
            self.write_formatted(table, len(rows), copy_text(rows))

    def write_formatted(self, table: str, count: int, text: str) -> None:
        with self._connection.cursor() as cursor:
            self.copy_seconds[table] += copy_formatted(cursor, table, text)
        self.counts[table] += count
        if self.on_rows:
            self.on_rows(table, count)


class _QueueSink(RowSink):
    """In the generating process: formats each batch and hands it to the loading process."""

    def __init__(self, batches):
        super().__init__()
        self._batches = batches

    def write(self, table: str, rows: Sequence[tuple]) -> None:
        if rows:
            self._batches.put((table, len(rows), copy_text(rows)))


def _generate_into(batches, generate: Callable[[RowSink], None]) -> None:
    try:
        generate(_QueueSink(batches))
    except BaseException as error:  # reported to the loading process, which raises it
        batches.put(("error", f"{type(error).__name__}: {error}", ""))
    else:
        batches.put(None)


class GenerationFailed(RuntimeError):
    """The generating process failed; the load is rolled back."""


def load_in_parallel(writer: CopyWriter, generate: Callable[[RowSink], None]) -> None:
    """Run `generate(sink)` in a child process while this one COPYs what it yields.

    Generation and formatting are pure Python; COPY is mostly waiting on PostgreSQL. In one
    process they would share the GIL; in two, the generator keeps one core busy while the
    server works on the other. Batches queue (at most `PARALLEL_QUEUE` of them) as formatted
    text, so memory stays flat. Where fork is unavailable, generation runs in this process.
    """
    if "fork" not in multiprocessing.get_all_start_methods():
        generate(writer)
        return
    context = multiprocessing.get_context("fork")
    batches = context.Queue(maxsize=PARALLEL_QUEUE)
    child = context.Process(target=_generate_into, args=(batches, generate), daemon=True)
    child.start()
    try:
        while True:
            try:
                item = batches.get(timeout=1)
            except queue.Empty:
                if not child.is_alive():
                    message = f"the generating process died (exit code {child.exitcode})"
                    raise GenerationFailed(message) from None
                continue
            if item is None:
                break
            if item[0] == "error":
                raise GenerationFailed(item[1])
            writer.write_formatted(*item)
    finally:
        if child.is_alive():
            # SIGKILL, not SIGTERM: the child holds nothing to tidy up, may be blocked on a full
            # queue, and may have inherited a SIGTERM handler from its parent.
            child.kill()
        child.join()


DELETE_ORDER = list(reversed(TABLE_ROWS))


def delete_all(cursor) -> dict[str, int]:
    """Empty every core table with DELETE, children first.

    DELETE rather than TRUNCATE: logical decoding (and so DMS) sees each deleted row, while a
    TRUNCATE would leave the lakehouse copy full of rows the source no longer has.
    """
    deleted = {}
    for table in DELETE_ORDER:
        cursor.execute(f"DELETE FROM {table}")
        deleted[table] = cursor.rowcount
    return deleted


def foreign_keys(cursor) -> list[tuple[str, str, str]]:
    """(table, constraint, definition) of every foreign key between the core tables."""
    cursor.execute(
        "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE contype = 'f' AND conrelid::regclass::text = ANY(%s) ORDER BY 1, 2",
        [list(TABLE_ROWS)],
    )
    return cursor.fetchall()


@contextmanager
def foreign_keys_checked_once(cursor) -> Iterator[None]:
    """Drop the foreign keys for a bulk load and add them back after it, in the caller's
    transaction: PostgreSQL then checks each key with one join over the table instead of one
    lookup per row (the advice of its manual's "Populating a Database"). Nothing is weakened:
    if any row breaks a key, adding it back fails and the whole load rolls back."""
    keys = foreign_keys(cursor)
    for table, name, _ in keys:
        cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
    yield
    for table, name, definition in keys:
        cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}")
