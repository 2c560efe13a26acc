"""lakehouse_query: the README's sample queries, run by DuckDB over the lakehouse tables and by
PostgreSQL over the source, side by side, with a verdict. DuckDB reads the tables through Arrow
(their data files, the newest version of each key), tombstones left out, so no DuckDB
extension is needed."""

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from core.errors import LakeError
from core.lake.layout import DELETED, lake_schema
from core.lake.warehouse import open_stores, open_warehouse
from core.source.sessions import session
from core.storage import Location
from core.storage.scratch import ScratchDuckDB, s3_of

# The README's sample queries, verbatim (a test checks the README still shows exactly these).
SAMPLE_QUERIES = [
    (
        "Revenue by tenant",
        """SELECT
    t.name,
    COUNT(DISTINCT o.id) as order_count,
    SUM(o.total) as total_revenue
FROM core_tenant t
LEFT JOIN core_order o ON o.tenant_id = t.id
WHERE o.status = 'completed'
GROUP BY t.name
ORDER BY total_revenue DESC""",
    ),
    (
        "Customer acquisition by month",
        """SELECT
    DATE_TRUNC('month', created_at) as month,
    COUNT(*) as new_customers
FROM core_customer
GROUP BY month
ORDER BY month""",
    ),
    (
        "Event funnel",
        """SELECT
    event_type,
    COUNT(*) as event_count
FROM core_event
GROUP BY event_type
ORDER BY event_count DESC""",
    ),
    (
        "MRR by tenant",
        """SELECT
    t.name,
    SUM(s.monthly_amount) as mrr
FROM core_tenant t
LEFT JOIN core_subscription s ON s.tenant_id = t.id
WHERE s.status = 'active'
GROUP BY t.name
ORDER BY mrr DESC""",
    ),
]


@dataclass
class Answer:
    title: str
    lake: list[tuple]
    source: list[tuple]

    @property
    def same(self) -> bool:
        # Rows with equal sort keys may come in either order: compare them as sorted rows.
        return sorted(map(comparable, self.lake)) == sorted(map(comparable, self.source))


def comparable(row: tuple) -> tuple:
    """A row as values, whichever driver read it: the same moment in any zone object, the same
    number at any scale."""
    values = []
    for value in row:
        if isinstance(value, datetime):
            value = value.astimezone(UTC).isoformat() if value.tzinfo else value.isoformat()
        elif isinstance(value, Decimal):
            value = str(value.normalize())
        values.append(repr(value))
    return tuple(values)


class LakeViews(ScratchDuckDB):
    """DuckDB with one view per lakehouse table, named as the source table: its current state,
    without tombstones."""

    def __init__(self, warehouse: Location):
        built = open_warehouse(warehouse)
        super().__init__("lakehouse-query-", s3=s3_of(built.location))
        stores = open_stores(built.location, built.table_format)
        for name, table in built.tables.items():
            store = stores(name, lake_schema(table, built.target))
            taken, _ = store.taken()
            if not taken:
                continue
            rows = f"{name}_rows"
            store.register(self.duck, rows)
            self.duck.execute(
                f"CREATE VIEW {name} AS SELECT * EXCLUDE ({DELETED}) FROM {rows} "
                f"WHERE NOT {DELETED}"
            )


def ask_lake(warehouse: Location, sql: str) -> tuple[list[str], list[tuple]]:
    """A query of the user's over the lakehouse's current state: its columns and rows."""
    import duckdb

    lake = LakeViews(warehouse)
    try:
        found = lake.duck.execute(sql)
        return [column[0] for column in found.description], found.fetchall()
    except duckdb.Error as error:
        reason = str(error).strip().splitlines()[0]
        raise LakeError(f"the query failed in DuckDB: {reason}") from None
    finally:
        lake.close()


def run_queries(params: dict, warehouse: Location) -> list[Answer]:
    lake = LakeViews(warehouse)
    answers = []
    try:
        with session(params) as cursor:
            for title, sql in SAMPLE_QUERIES:
                cursor.execute(sql)
                rows = lake.duck.execute(sql).to_arrow_table().to_pylist()  # no pytz needed
                answers.append(
                    Answer(title, [tuple(row.values()) for row in rows], cursor.fetchall())
                )
    finally:
        lake.close()
    return answers
