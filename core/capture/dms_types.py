"""The type each PostgreSQL column travels as in DMS, and which columns DMS carries as LOBs (the
export documents them, the readiness checks size them, setup gives their tables REPLICA
IDENTITY FULL)."""

import re

from core.source.catalog import SCHEMA, Column, Table
from core.source.quoting import quoted

# PostgreSQL type (as format_type prints it, without its modifier) -> AWS DMS type.
DMS_TYPES = {
    "uuid": "STRING",
    "boolean": "BOOLEAN",  # with the endpoint's map_boolean_as_boolean (else STRING(5))
    "smallint": "INT2",
    "integer": "INT4",
    "bigint": "INT8",
    "real": "REAL4",
    "double precision": "REAL8",
    "date": "DATE",
    "time without time zone": "TIME",
    "timestamp without time zone": "DATETIME",
    "timestamp with time zone": "DATETIME",
    "json": "NCLOB",
    "jsonb": "NCLOB",
    "text": "NCLOB",
    "xml": "NCLOB",
    "bytea": "BLOB",
}
LOB_DMS_TYPES = {"NCLOB", "CLOB", "BLOB"}


def dms_type(postgres_type: str) -> str:
    """The DMS type of a PostgreSQL column type, e.g. numeric(12,2) -> NUMERIC(12,2)."""
    match = re.fullmatch(r"numeric\((\d+),(\d+)\)", postgres_type)
    if match:
        precision, scale = map(int, match.groups())
        return f"NUMERIC({precision},{scale})" if precision <= 38 else "STRING"
    match = re.fullmatch(r"character(?: varying)?\((\d+)\)", postgres_type)
    if match:
        return f"WSTRING({match.group(1)})"
    if postgres_type == "character varying":
        return "NCLOB"  # unbounded varchar travels as a LOB, like text
    return DMS_TYPES.get(postgres_type, "STRING")


def is_lob(column: Column) -> bool:
    return dms_type(column.type) in LOB_DMS_TYPES


def lob_columns(table: Table) -> list[Column]:
    return [column for column in table.columns if is_lob(column)]


def measure_lobs(cursor, tables: list[Table]) -> list[Table]:
    """The tables, each LOB column given the length of its longest value now (a scan of the
    table): what DMS's LobMaxSize must cover."""
    for table in tables:
        for column in lob_columns(table):
            cursor.execute(
                f"SELECT coalesce(max(octet_length({quoted(column.name)}::text)), 0) "
                f"FROM {SCHEMA}.{quoted(table.name)}"
            )
            column.largest_bytes = cursor.fetchone()[0]
    return tables
