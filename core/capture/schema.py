"""The tables of a capture as DMS describes them: each column's name, PostgreSQL type and the
DMS type it travels as, the primary key and indexes. The replication side reads them from the
catalogue (core/source/catalog.py); a capture records them (capture.json)."""

import re
from dataclasses import dataclass, field

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
