"""The source's tables as PostgreSQL's catalogue describes them: columns in order, their types
as `format_type` prints them, the primary key and the indexes. What DMS makes of the types is
the capture format's business (core/capture/dms_types.py)."""

from dataclasses import dataclass, field

SCHEMA = "public"  # the source schema, and the first folder of every capture file's key
# The tables DMS moves: everything of the core app in schema public.
TABLE_PREFIX = "core_"


@dataclass
class Column:
    name: str
    type: str
    nullable: bool = True
    largest_bytes: int | None = None  # measured for LOB columns only: the longest value now


@dataclass
class Table:
    name: str
    columns: list[Column]
    primary_key: list[str]
    indexes: list[dict] = field(default_factory=list)

    def column(self, name: str) -> Column:
        return next(column for column in self.columns if column.name == name)


def core_tables(cursor) -> list[str]:
    """The core tables as they are in the database now (not a hand-kept list)."""
    cursor.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND c.relname LIKE %s "
        "ORDER BY c.relname",
        [SCHEMA, TABLE_PREFIX.replace("_", "\\_") + "%"],
    )
    return [name for (name,) in cursor.fetchall()]


def read_schema(cursor) -> list[Table]:
    """Every core table as the catalogue describes it."""
    tables = []
    for name in core_tables(cursor):
        cursor.execute(
            "SELECT a.attname, format_type(a.atttypid, a.atttypmod), NOT a.attnotnull "
            "FROM pg_attribute a WHERE a.attrelid = %s::regclass AND a.attnum > 0 "
            "AND NOT a.attisdropped ORDER BY a.attnum",
            [f"{SCHEMA}.{name}"],
        )
        columns = [Column(n, kind, nullable) for n, kind, nullable in cursor.fetchall()]
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
