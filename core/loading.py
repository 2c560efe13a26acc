"""Writes generated rows to PostgreSQL with COPY, and cleans the tables.

COPY runs on a background thread: while PostgreSQL parses and indexes one batch (on its own
core), the generator builds the next one. The queue between them is short, so memory stays flat
however large the run.
"""

import io
import json
import queue
import threading
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


_FORMATTERS: dict[type, Callable[[object], str]] = {
    str: _text,
    UUID: str,
    int: str,
    Decimal: str,
    datetime: datetime.isoformat,
    date: date.isoformat,
    bool: lambda value: "t" if value else "f",
    type(None): lambda value: "\\N",
    dict: lambda value: _text(json.dumps(value, separators=(",", ":"), sort_keys=True)),
}


def copy_value(value: object) -> str:
    """One value in PostgreSQL's COPY text format."""
    return _FORMATTERS[type(value)](value)


def copy_text(rows: Sequence[tuple]) -> str:
    formatters = _FORMATTERS
    return "".join(
        "\t".join([formatters[type(value)](value) for value in row]) + "\n" for row in rows
    )


def copy_rows(cursor, table: str, rows: Sequence[tuple]) -> float:
    """COPY `rows` (NamedTuples of the table's row type) into `table`; returns the seconds."""
    started = time.perf_counter()
    if rows:
        columns = ", ".join(TABLE_ROWS[table]._fields)
        cursor.copy_expert(f"COPY {table} ({columns}) FROM STDIN", io.StringIO(copy_text(rows)))
    return time.perf_counter() - started


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

    def close(self) -> None:
        """Wait until everything written has reached the database."""


class CopyWriter(RowSink):
    """COPYs batches in the order they were written, on a background thread if `background`.

    `raw_connection` is the psycopg2 connection of the caller's open transaction. In the
    background the caller must not use that connection until `close()` returns; callers that
    read between writes pass `background=False`.
    """

    def __init__(
        self,
        raw_connection,
        on_rows: Callable[[str, int], None] | None = None,
        *,
        background: bool = True,
    ):
        super().__init__(on_rows)
        self._connection = raw_connection
        self._queue: queue.Queue = queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        self._abandoned = False
        self._thread = threading.Thread(target=self._run, name="copy-writer", daemon=True)
        if background:
            self._thread.start()

    def _run(self) -> None:
        with self._connection.cursor() as cursor:
            while (item := self._queue.get()) is not None:
                if self._error is not None or self._abandoned:
                    continue  # drain: the transaction will be rolled back
                table, rows = item
                try:
                    self.copy_seconds[table] += copy_rows(cursor, table, rows)
                    if self.on_rows:
                        self.on_rows(table, len(rows))
                except BaseException as error:  # re-raised in the caller by write/close
                    self._error = error

    def write(self, table: str, rows: Sequence[tuple]) -> None:
        if self._error is not None:
            raise self._error
        if not rows:
            return
        self.counts[table] += len(rows)
        if self._thread.is_alive():
            self._queue.put((table, rows))
            return
        with self._connection.cursor() as cursor:
            self.copy_seconds[table] += copy_rows(cursor, table, rows)
        if self.on_rows:
            self.on_rows(table, len(rows))

    def close(self, *, abandon: bool = False) -> None:
        """Wait for the queued batches; with `abandon` (the run failed), skip them instead."""
        self._abandoned = self._abandoned or abandon
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()
        if self._error is not None and not abandon:
            raise self._error


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
