"""Writes generated rows to PostgreSQL with COPY, and cleans the tables."""

import functools
import io
import itertools
import json
import multiprocessing
import os
import queue
import signal
import time
import typing
from collections.abc import Callable, Sequence
from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

from core.generation.rows import TABLE_ROWS
from core.source.children import become_child_of


def _text(value: str) -> str:
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return (
            value.replace("\\", "\\\\")
            .replace("\t", "\\t")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
        )
    return value


def _text_column(values: Sequence[str]) -> Sequence[str]:
    joined = "".join(values)  # one scan of the batch; few values need escaping, most batches none
    if "\\" in joined or "\t" in joined or "\n" in joined or "\r" in joined:
        return [_text(value) for value in values]
    return values


def _json(value: dict) -> str:
    return _text(json.dumps(value, separators=(",", ":")))


NULL = "\\N"

# One function per column type, each turning a batch's column into COPY text format. A column
# at a time, because the type is known once per column instead of looked up once per value.
_COLUMN_FORMATTERS: dict[type, Callable[[Sequence], Sequence[str]]] = {
    str: _text_column,
    # 32 hex digits, which PostgreSQL reads as a uuid: cheaper than str(), which adds dashes.
    UUID: lambda values: [f"{value.int:032x}" for value in values],
    int: lambda values: list(map(str, values)),
    Decimal: lambda values: list(map(str, values)),
    datetime: lambda values: list(map(datetime.isoformat, values)),
    date: lambda values: list(map(date.isoformat, values)),
    bool: lambda values: ["t" if value else "f" for value in values],
    dict: lambda values: list(map(_json, values)),
}


def _nullable(format_column: Callable[[Sequence], Sequence[str]]):
    def format_nullable(values: Sequence) -> list[str]:
        present = iter(format_column([value for value in values if value is not None]))
        return [NULL if value is None else next(present) for value in values]

    return format_nullable


@functools.cache
def column_formatters(row_type: type) -> tuple[Callable[[Sequence], Sequence[str]], ...]:
    """The formatter of each column of a row type (a NamedTuple of `core.generation.rows`),
    from its annotations: `X | None` columns may hold NULL."""
    formatters = []
    for annotation in typing.get_type_hints(row_type).values():
        kinds = [kind for kind in typing.get_args(annotation) if kind is not type(None)]
        kind = kinds[0] if kinds else annotation
        format_column = _COLUMN_FORMATTERS[typing.get_origin(kind) or kind]
        formatters.append(_nullable(format_column) if kinds else format_column)
    return tuple(formatters)


def copy_text(rows: Sequence[tuple]) -> str:
    """Rows (NamedTuples of one table's row type) in PostgreSQL's COPY text format."""
    if not rows:
        return ""
    formatters = column_formatters(type(rows[0]))
    columns = zip(*rows, strict=True)
    formatted = [
        format_column(values) for format_column, values in zip(formatters, columns, strict=True)
    ]
    return "\n".join(map("\t".join, zip(*formatted, strict=True))) + "\n"


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

    def claim(self) -> bool:
        """Start the next unit of work; False if another process generates it instead.

        A generator calls this before each unit (a tenant's catalogue, a batch of customers)
        and skips the units it does not get. A sink of its own gets every unit."""
        return True


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
    """In a generating process: claims every `share`-th unit of work, starting at `first`,
    formats each batch of it and hands it to the loading process, with a mark at each unit's
    end so the loader can take the processes' units in turn."""

    def __init__(self, batches, first: int, share: int):
        super().__init__()
        self._batches = batches
        self._next_unit, self._share, self._first = 0, share, first
        self._in_unit = False

    def write(self, table: str, rows: Sequence[tuple]) -> None:
        if rows:
            self._batches.put((table, len(rows), copy_text(rows)))

    def claim(self) -> bool:
        self.end_unit()
        unit, self._next_unit = self._next_unit, self._next_unit + 1
        self._in_unit = unit % self._share == self._first
        return self._in_unit

    def end_unit(self) -> None:
        if self._in_unit:
            self._batches.put(_UNIT_END)
            self._in_unit = False


_UNIT_END = ("unit end",)
_DONE = ("done",)


def _generate_into(
    parent: int, batches, first: int, share: int, generate: Callable[[RowSink], None]
) -> None:
    # Dies with the loading process, and keeps none of its sockets (its PostgreSQL connection:
    # a child holding it would keep the load's transaction, and its locks, alive).
    become_child_of(parent)
    # Ctrl-C reaches the whole process group; the loading process decides, and kills this one.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.set_wakeup_fd(-1)  # the parent's, inherited: its signals are not ours to report
    sink = _QueueSink(batches, first, share)
    try:
        generate(sink)
        sink.end_unit()
    except BaseException as error:  # reported to the loading process, which raises it
        batches.put(("error", f"{type(error).__name__}: {error}"))
    else:
        batches.put(_DONE)


class GenerationFailed(RuntimeError):
    """A generating process failed; the load is rolled back."""


# Generating processes beside the loading one. Two keep generation ahead of a 2-core server:
# one process generates ~75,000 rows a second, while COPY into unindexed tables takes a fraction
# of a core.
GENERATORS = 2


def load_in_parallel(
    writer: CopyWriter, generate: Callable[[RowSink], None], generators: int = GENERATORS
) -> None:
    """Run `generate(sink)` in child processes while this one COPYs what they yield.

    Generation and formatting are pure Python; COPY is mostly waiting on PostgreSQL. In one
    process they would share the GIL; apart, the generators keep cores busy while the server
    works. Each child claims every `generators`-th unit of work (`RowSink.claim`), and this
    process takes the units in order, so the rows reach the tables in the same order, whatever
    the number of children. Batches queue (at most `PARALLEL_QUEUE` per child) as formatted
    text, so memory stays flat. Where fork is unavailable, generation runs in this process.
    """
    if "fork" not in multiprocessing.get_all_start_methods():
        generate(writer)
        return
    context = multiprocessing.get_context("fork")
    queues = [context.Queue(maxsize=PARALLEL_QUEUE) for _ in range(generators)]
    parent = os.getpid()
    children = [
        context.Process(
            target=_generate_into, args=(parent, queues[first], first, generators, generate)
        )
        for first in range(generators)
    ]
    for child in children:
        child.daemon = True
        child.start()
    try:
        for unit in itertools.count():
            if _load_unit(writer, queues[unit % generators], children[unit % generators]):
                break
        # The first child without the next unit ends the work: the others have none left.
        for first in range(generators):
            if first != unit % generators and _next_item(queues[first], children[first]) != _DONE:
                raise GenerationFailed("a generating process went on after the last unit")
    finally:
        for child in children:
            if child.is_alive():
                # SIGKILL, not SIGTERM: a child holds nothing to tidy up, may be blocked on a
                # full queue, and may have inherited a SIGTERM handler from its parent.
                child.kill()
            child.join()


def _load_unit(writer: CopyWriter, batches, child) -> bool:
    """COPY one unit of work from `batches`; True if its child had no more units."""
    while True:
        item = _next_item(batches, child)
        if item is _DONE:
            return True
        if item is _UNIT_END:
            return False
        writer.write_formatted(*item)


def _next_item(batches, child) -> tuple:
    while True:
        try:
            item = batches.get(timeout=1)
        except queue.Empty:
            if not child.is_alive():
                message = f"a generating process died (exit code {child.exitcode})"
                raise GenerationFailed(message) from None
            continue
        if item == _DONE:
            return _DONE
        if item == _UNIT_END:
            return _UNIT_END
        if item[0] == "error":
            raise GenerationFailed(item[1])
        return item


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


def set_aside_foreign_keys(cursor) -> list[tuple[str, str, str]]:
    """Drop the foreign keys for a bulk load; `restore_foreign_keys` adds them back after it,
    in the same transaction. PostgreSQL then checks each key with one join over the table
    instead of one lookup per row (the advice of its manual's "Populating a Database"). Nothing
    is weakened: if any row breaks a key, adding it back fails and the whole load rolls back."""
    keys = foreign_keys(cursor)
    for table, name, _ in keys:
        cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
    return keys


def restore_foreign_keys(cursor, keys: list[tuple[str, str, str]]) -> None:
    for table, name, definition in keys:
        cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}")


# (table, index, owning constraint or None, definition)
Index = tuple[str, str, str | None, str]


def owned_indexes(cursor) -> list[Index]:
    """(table, index, owning constraint or None, definition) of every index on the core tables
    that a load may set aside: primary keys, unique constraints and plain indexes. An index
    that is a table's replica identity stays, as logical decoding reads it. So do partial and
    expression indexes: PostgreSQL prints their predicates and expressions back reworded
    (`= ANY (ARRAY[...])` casts move), so one rebuilt from its printed definition would not
    be the index the migrations made, word for word."""
    cursor.execute(
        "SELECT x.indrelid::regclass::text, x.indexrelid::regclass::text, c.conname, "
        "coalesce(pg_get_constraintdef(c.oid), pg_get_indexdef(x.indexrelid)) "
        "FROM pg_index x LEFT JOIN pg_constraint c "
        "ON c.conindid = x.indexrelid AND c.conrelid = x.indrelid AND c.contype IN ('p', 'u') "
        "WHERE x.indrelid::regclass::text = ANY(%s) AND NOT x.indisreplident "
        "AND x.indpred IS NULL AND x.indexprs IS NULL "
        "ORDER BY 1, c.contype NULLS LAST, 2",
        [list(TABLE_ROWS)],
    )
    return cursor.fetchall()


def tables_are_empty(cursor) -> bool:
    checks = " AND ".join(f"NOT EXISTS (SELECT FROM {table})" for table in TABLE_ROWS)
    cursor.execute(f"SELECT {checks}")
    return cursor.fetchone()[0]


# Memory for each index build after a load (PostgreSQL's default of 64 MB spills to disk).
INDEX_BUILD_MEMORY = "256MB"


def set_aside_indexes(cursor) -> list[Index]:
    """For a load into empty tables: drop their indexes (keys and unique constraints included);
    `rebuild_indexes` builds each once after the load, in the same transaction. A build sorts
    the table once; keeping an index up to date row by row lands random UUIDs all over it, which
    made the server the bottleneck of big loads. Uniqueness is checked when each index is
    built: a duplicate fails the build and the whole load rolls back. The foreign keys must be
    set aside first, as they depend on the keys dropped here."""
    indexes = owned_indexes(cursor)
    for table, index, constraint, _ in indexes:
        if constraint:
            cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {constraint}")
        else:
            cursor.execute(f"DROP INDEX {index}")
    return indexes


def rebuild_indexes(cursor, indexes: list[Index]) -> None:
    cursor.execute(f"SET LOCAL maintenance_work_mem = '{INDEX_BUILD_MEMORY}'")
    for table, _, constraint, definition in indexes:
        if constraint:
            cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {constraint} {definition}")
        else:
            cursor.execute(definition)
