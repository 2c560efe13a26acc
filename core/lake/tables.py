"""What every lakehouse table store shares (delta.py, iceberg.py; the apply in apply.py): the
table's shape, the bookkeeping each commit carries, and the errors.

A lakehouse table is the source's columns, the commit time and change sequence of each row's
last change, and whether that change deleted it (a tombstone: see apply.py). Each commit of
ours records the capture files it applied (FILES_KEY) and the capture they came from
(CAPTURE_KEY)."""

from collections.abc import Iterator
from typing import Protocol

import pyarrow as pa

from core.capture.files import arrow_type
from core.capture.schema import Table
from core.capture.target import CHANGE_SEQUENCE_COLUMN, S3Target
from core.errors import ProjectError

DELETED = "_deleted"  # a lakehouse table keeps a deleted key as a tombstone (see apply.py)
FILES_KEY = "lakehouse.files"
CAPTURE_KEY = "lakehouse.capture"


class LakeError(ProjectError):
    """One line for the user: what is wrong and what to do; nothing was applied."""


class CommitConflict(LakeError):
    """Another writer committed to the table since this apply planned: plan again."""


def lake_schema(table: Table, target: S3Target) -> pa.Schema:
    """A lakehouse table: the source's columns, the commit time and change sequence of the
    row's last change, and whether that change deleted it."""
    fields = [pa.field(column.name, arrow_type(column.type, target)) for column in table.columns]
    fields += [
        pa.field(target.timestamp_column_name, pa.string()),
        pa.field(CHANGE_SEQUENCE_COLUMN, pa.string()),
        pa.field(DELETED, pa.bool_()),
    ]
    return pa.schema(fields)


class TableStore(Protocol):
    """One lakehouse table in one format."""

    def taken(self) -> tuple[set[str], str | None]:
        """The capture files the table has taken, and the capture it was built from, as of
        the table's current version: the version the next commits are planned from."""

    def merge(self, batch: pa.Table, files: list[str], capture_id: str) -> None:
        """Apply one row per key (the last change) with the sequence guard, and record
        `files` in the same commit; CommitConflict if the table moved since it was planned
        from."""

    def append(self, chunks: Iterator[pa.Table], files: list[str], capture_id: str) -> int:
        """Add rows whose keys the table does not hold, in one commit that records `files`;
        the number of rows added (CommitConflict as for merge)."""

    def register(self, duck, name: str) -> None:
        """Make the table (tombstones included) readable in a DuckDB connection as `name`."""


def register_files(duck, name: str, paths: list[str], schema: pa.Schema) -> None:
    """A table that is exactly its Parquet data files (no deletion vectors, no delete files),
    as a DuckDB view: DuckDB streams them within its memory limit, whatever the table's size."""
    if not paths:
        duck.register(name, schema.empty_table())
        return
    listed = ", ".join("'" + path.replace("'", "''") + "'" for path in paths)
    files = f"read_parquet([{listed}], union_by_name = true)"
    present = set(duck.sql(f"SELECT * FROM {files} LIMIT 0").columns)
    # A column added to the table that no data file holds yet: NULL in every row.
    added = "".join(f', NULL AS "{n}"' for n in schema.names if n not in present)
    duck.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT *{added} FROM {files}")
