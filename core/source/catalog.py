"""The core tables as the catalog describes them: columns, PostgreSQL and DMS types, keys and
indexes. The readiness checks, the DMS export and the capture all read the schema here."""

from core.capture import SCHEMA
from core.capture.schema import Column, Table, dms_type
from core.replication import core_tables


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
