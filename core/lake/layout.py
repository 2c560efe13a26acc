"""A lakehouse table's shape and layout, whatever its format (delta.py, iceberg.py).

A lakehouse table is the source's columns, the commit time and change sequence of each row's
last change, and whether that change deleted it (a tombstone: see apply.py).

Its layout: the table holds *versions* of each key, appended by each apply, and is read as its
current state, the newest version of each key (reading.py); lakehouse_maintain compacts it
back to one version per key (maintain.py). It is partitioned by `_bucket`, the first hex digit
of the key, so that maintenance takes one sixteenth of a table at a time, and a key's versions
are always in one partition."""

import pyarrow as pa
import pyarrow.compute as pc

from core.capture.files import arrow_type
from core.capture.target import CHANGE_SEQUENCE_COLUMN, S3Target
from core.source.catalog import Table

DELETED = "_tombstone"  # a deleted key is kept as a tombstone (apply.py); Iceberg reserves _deleted
BUCKET = "_bucket"  # the partition: the key's first hex digit (see above)
LAYOUT = 3  # 1: one row per key, by MERGE; 2: versions, bucketed; 3: `_tombstone`, not `_deleted`


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


def stored_schema(schema: pa.Schema) -> pa.Schema:
    """The lake schema as stored: with the partition column."""
    return schema.append(pa.field(BUCKET, pa.string()))


def with_bucket(rows: pa.Table) -> pa.Table:
    return rows.append_column(BUCKET, pc.utf8_slice_codeunits(rows.column("id"), 0, 1))
