"""The core tables as the catalog describes them: columns, PostgreSQL and DMS types, keys and
indexes. The readiness checks, the DMS export and the capture all read the schema here."""

import re
from dataclasses import dataclass, field

from core.replication import SCHEMA, core_tables

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


@dataclass
class Column:
    name: str
    type: str
    nullable: bool
    dms_type: str
    largest_bytes: int | None = None  # LOB columns only: the longest value stored now

    @property
    def is_lob(self) -> bool:
        return self.dms_type in LOB_DMS_TYPES


@dataclass
class Table:
    name: str
    columns: list[Column]
    primary_key: list[str]
    indexes: list[dict] = field(default_factory=list)

    @property
    def lob_columns(self) -> list[Column]:
        return [column for column in self.columns if column.is_lob]

    def column(self, name: str) -> Column:
        return next(column for column in self.columns if column.name == name)


def read_schema(cursor, *, measure_lobs: bool = True) -> list[Table]:
    """Every core table as the catalog describes it; `measure_lobs` also finds the longest
    value of each LOB column (a scan of the table)."""
    tables = []
    for name in core_tables(cursor):
        cursor.execute(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull "
            "FROM pg_attribute a WHERE a.attrelid = %s::regclass AND a.attnum > 0 "
            "AND NOT a.attisdropped ORDER BY a.attnum",
            [f"{SCHEMA}.{name}"],
        )
        columns = [
            Column(n, kind, nullable, dms_type(kind)) for n, kind, nullable in cursor.fetchall()
        ]
        for column in columns:
            if measure_lobs and column.is_lob:
                cursor.execute(
                    f'SELECT coalesce(max(octet_length("{column.name}"::text)), 0) '
                    f"FROM {SCHEMA}.{name}"
                )
                column.largest_bytes = cursor.fetchone()[0]
        cursor.execute(
            "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
            "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = %s::regclass AND i.indisprimary "
            "ORDER BY array_position(i.indkey, a.attnum)",
            [f"{SCHEMA}.{name}"],
        )
        primary_key = [column for (column,) in cursor.fetchall()]
        cursor.execute(
            "SELECT c.relname, pg_get_indexdef(i.indexrelid), i.indisunique FROM pg_index i "
            "JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = %s::regclass ORDER BY 1",
            [f"{SCHEMA}.{name}"],
        )
        indexes = [
            {"name": index, "definition": definition, "unique": unique}
            for index, definition, unique in cursor.fetchall()
        ]
        tables.append(Table(name, columns, primary_key, indexes))
    return tables
