"""A lakehouse table read in DuckDB as its current state: the newest version of each key."""

import pyarrow as pa

from core.capture.target import CHANGE_SEQUENCE_COLUMN
from core.lake.layout import BUCKET


def register_files(duck, name: str, paths: list[str], schema: pa.Schema) -> None:
    """A table that is exactly its Parquet data files (no deletion vectors, no delete files),
    as a DuckDB view: DuckDB streams them within its memory limit, whatever the table's size."""
    if not paths:
        register_dataset(duck, name, schema.empty_table())
        return
    drop_relation(duck, name, "TABLE")  # the last table's rows, read by register_rows
    listed = ", ".join("'" + path.replace("'", "''") + "'" for path in paths)
    files = f"read_parquet([{listed}], union_by_name = true)"
    present = set(duck.sql(f"SELECT * FROM {files} LIMIT 0").columns)
    # A column added to the table that no data file holds yet: NULL in every row. Delta keeps
    # a partition's value in its log, not in the files: ours is the key's first digit.
    added = "".join(
        ', substr(id, 1, 1) AS "_bucket"' if n == BUCKET else f', NULL AS "{n}"'
        for n in schema.names
        if n not in present
    )
    duck.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT *{added} FROM {files}")


def drop_relation(duck, name: str, kind: str) -> None:
    """Drop the temporary TABLE or VIEW `name` if there is one of that kind (DuckDB refuses to
    replace one kind by the other, and to drop one as the other)."""
    catalog = (
        "duckdb_tables() WHERE table_name" if kind == "TABLE" else "duckdb_views() WHERE view_name"
    )
    if duck.execute(f"SELECT count(*) FROM {catalog} = ? AND temporary", [name]).fetchone()[0]:
        duck.execute(f"DROP {kind} {name}")


def register_dataset(duck, name: str, dataset) -> None:
    """An Arrow table or dataset, read by DuckDB as view `name` in place of what had the name."""
    drop_relation(duck, name, "TABLE")
    drop_relation(duck, name, "VIEW")
    duck.register(name, dataset)


def register_rows(duck, name: str, rows: pa.RecordBatchReader) -> None:
    """A stream of rows read once by a format's own library (one that applies what the data
    files alone do not show), kept in DuckDB as table `name` (on disk past its memory limit)."""
    drop_relation(duck, name, "VIEW")  # the last table's files, by register_files
    duck.register(f"{name}_stream", rows)
    duck.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM {name}_stream")
    duck.unregister(f"{name}_stream")


def register_current(duck, name: str, stored: str) -> None:
    """`name`: the current state of the table whose stored versions are `stored`, the newest
    version of each key (tombstones included), without the partition column. A table written
    elsewhere without our columns is taken as it is."""
    columns = duck.sql(f"SELECT * FROM {stored} LIMIT 0").columns
    shown = f"* EXCLUDE ({BUCKET})" if BUCKET in columns else "*"
    newest = (
        f"QUALIFY row_number() OVER (PARTITION BY id ORDER BY {CHANGE_SEQUENCE_COLUMN} DESC) = 1"
        if {"id", CHANGE_SEQUENCE_COLUMN} <= set(columns)
        else ""
    )
    duck.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT {shown} FROM {stored} {newest}")
