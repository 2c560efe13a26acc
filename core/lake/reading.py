"""A lakehouse table read in DuckDB as its current state: the newest version of each key."""

import pyarrow as pa

from core.capture.target import CHANGE_SEQUENCE_COLUMN
from core.lake.layout import BUCKET


def register_files(duck, name: str, paths: list[str], schema: pa.Schema) -> None:
    """A table that is exactly its Parquet data files (no deletion vectors, no delete files),
    as a DuckDB view: DuckDB streams them within its memory limit, whatever the table's size."""
    if not paths:
        duck.register(name, schema.empty_table())
        return
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
