"""Logical replication for CDC: setup, readiness checks and the DMS hand-off."""

from core.capture import SCHEMA

# The tables DMS moves: everything of the core app in schema public.
TABLE_PREFIX = "core_"
DEFAULT_PUBLICATION = "dms_publication"


def core_tables(cursor) -> list[str]:
    """The core tables as they are in the database now (not a hand-kept list)."""
    cursor.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = %s AND c.relkind IN ('r', 'p') AND c.relname LIKE %s "
        "ORDER BY c.relname",
        [SCHEMA, TABLE_PREFIX.replace("_", "\\_") + "%"],
    )
    return [name for (name,) in cursor.fetchall()]
