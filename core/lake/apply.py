"""A capture applied to lakehouse tables, whatever the table format (delta.py, iceberg.py hold
what differs).

Per table: the files it has not taken yet, full load first, then changes in change-sequence
order, in groups; per group the last change per key, appended as new versions of those keys.
The table is read as its current state, the newest version of each key by change sequence
(reading.py), so an apply costs what its batch costs, whatever the size of the table: no file
already in the table is read or rewritten. lakehouse_maintain compacts the versions away.

Which files a table has taken is written into the very commit that applied them, so a crash
between the append and the bookkeeping cannot apply a file twice, and a rerun applies only
what is new. Full-load files are read a chunk at a time and appended in one commit each, so
memory stays flat whatever their size; a full-load file delivered after changes is appended
the same way, its rows older than any change.

A deleted key stays as a tombstone (`_tombstone` true, with the delete's sequence): S3 delivers
files at least once and in no order, and a change file that arrives after the delete of its
key must not bring the key back. Readers (lakehouse_verify, the queries) leave tombstones out,
and maintenance drops those that no file still to come can contradict (maintain.py). The
result depends neither on the order or repetition of deliveries nor on how the changes were
split into files.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from core.capture.reader import (
    TableFiles,
    check_columns,
    open_capture,
    read_chunks,
    read_file,
)
from core.capture.target import CHANGE_SEQUENCE_COLUMN, OP_COLUMN
from core.errors import CommitConflict, LakeError
from core.lake.layout import DELETED, lake_schema
from core.lake.store import TableFormat, TableStore
from core.lake.warehouse import open_stores, write_warehouse_record
from core.storage import Location, StoredFile, registry

# Change files applied by one commit at most (full-load files go one by one: they are big).
FILES_PER_COMMIT = 50
# Times a table's apply plans again after another apply committed to it first.
REPLANS = 20


@dataclass
class TableApplied:
    files: int = 0
    rows: int = 0  # rows of the files, before keeping the last change per key
    commits: int = 0


@dataclass
class ApplyResult:
    tables: dict[str, TableApplied] = field(default_factory=dict)

    @property
    def files(self) -> int:
        return sum(table.files for table in self.tables.values())


def last_change_per_key(rows: pa.Table, schema: pa.Schema) -> pa.Table:
    """One row per id, the one with the highest change sequence, shaped as the lake table."""
    duck = duckdb.connect()
    duck.register("batch", rows)
    columns = ", ".join(f'"{name}"' for name in schema.names if name != DELETED)
    last = duck.execute(
        f'SELECT {columns}, "{OP_COLUMN}" = \'D\' AS "{DELETED}" FROM batch '
        f'QUALIFY row_number() OVER (PARTITION BY id ORDER BY "{CHANGE_SEQUENCE_COLUMN}" DESC) = 1'
    ).to_arrow_table()
    duck.close()
    return last.cast(schema)


def as_lake_rows(rows: pa.Table, schema: pa.Schema) -> pa.Table:
    """A full-load chunk shaped as the lake table (its keys are unique: no dedupe needed)."""
    columns = [rows.column(name) for name in schema.names if name != DELETED]
    columns.append(pc.equal(rows.column(OP_COLUMN), "D"))
    return pa.Table.from_arrays(columns, schema=schema)


def change_groups(files: TableFiles, taken: set[str]) -> list[list[StoredFile]]:
    changes = [path for path in files.changes if path.name not in taken]
    return [
        changes[start : start + FILES_PER_COMMIT]
        for start in range(0, len(changes), FILES_PER_COMMIT)
    ]


def planned_taken(store: TableStore, files: TableFiles, capture_id: str) -> set[str]:
    """The files the table has taken, as of the version planned from; a table built from
    another capture is refused."""
    taken, owner = store.taken()
    if owner is not None and owner != capture_id:
        raise LakeError(
            f"the warehouse holds {files.table.name} built from another capture ({owner}): "
            "use a new --warehouse"
        )
    return taken


def apply_table(
    store: TableStore, files: TableFiles, target, capture_id: str, done: TableApplied
) -> None:
    """Apply what the table has not taken yet, planned from its current version, counting
    into `done` as each commit lands."""
    taken = planned_taken(store, files, capture_id)
    schema = lake_schema(files.table, target)
    for path in files.loads:
        if path.name in taken:
            continue
        chunks = (as_lake_rows(rows, schema) for rows in read_chunks(path, files.table, target))
        done.rows += store.append(chunks, [path.name], capture_id)
        done.files += 1
        done.commits += 1
    for group in change_groups(files, taken):
        rows = pa.concat_tables([read_file(path, files.table, target) for path in group])
        last = last_change_per_key(rows, schema)
        store.append(iter([last]), [path.name for path in group], capture_id)
        done.files += len(group)
        done.rows += rows.num_rows
        done.commits += 1


def apply_capture(
    source: Location,
    warehouse: Location,
    *,
    table_format: TableFormat = TableFormat.DELTA,
    on_table: Callable[[str, TableApplied], None] | None = None,
    engine: Callable[..., None] | None = None,
) -> ApplyResult:
    """Apply what each table of the capture has not taken yet, by `engine` (apply_table's
    signature; this process by default, or spark.py's). A table another apply commits to
    meanwhile is planned again from what it now holds (its files taken are not applied
    twice). The registry of places (the pipeline page's) records the warehouse."""
    capture, tables = open_capture(source)
    check_columns(tables, capture.target)
    stores = open_stores(warehouse, table_format)
    capture_id = capture.identity
    write_warehouse_record(warehouse, table_format, capture, capture_id, source)
    registry.record_warehouse(warehouse, table_format, source)
    result = ApplyResult()
    for name, files in tables.items():
        if not files.ordered:
            continue
        store = stores(name, lake_schema(files.table, capture.target))
        applied = TableApplied()
        for attempt in range(REPLANS + 1):
            try:
                (engine or apply_table)(store, files, capture.target, capture_id, applied)
                break
            except CommitConflict:
                if attempt == REPLANS:
                    raise LakeError(
                        f"{name}: another writer committed to it {REPLANS + 1} times while this "
                        "apply planned; run lakehouse_apply again"
                    ) from None
        result.tables[name] = applied
        if on_table:
            on_table(name, applied)
    return result
