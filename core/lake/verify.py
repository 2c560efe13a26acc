"""lakehouse_verify: each lakehouse table (Delta or Iceberg) against the live PostgreSQL table,
the way reladiff and data-diff work: row counts per tenant, then a hash per key range, then
rows only where a range differs (the same comparison verify_cdc makes for a capture, see
core/replication/verify.py). Tombstones (`_deleted`) are not rows."""

from dataclasses import dataclass, field
from pathlib import Path

from core.lake.apply import open_stores, open_warehouse
from core.lake.capture_files import DELETED, lake_schema
from core.replication import SCHEMA
from core.replication.connections import session
from core.replication.schema import Table
from core.replication.target import S3Target
from core.replication.verify import (
    ScratchDuckDB,
    TableReport,
    compare_table,
    duck_text,
    quoted,
    row_hash,
)


@dataclass
class LakeReport:
    table: TableReport
    tenants: dict[str, tuple[int, int]] = field(default_factory=dict)  # differing: lake, live

    @property
    def same(self) -> bool:
        return self.table.same and not self.tenants


def tenant_column(table: Table) -> str:
    return "id" if table.name == "core_tenant" else "tenant_id"


class LakeReader(ScratchDuckDB):
    """A warehouse's Delta or Iceberg tables, read with DuckDB through Arrow (no DuckDB
    extension needed)."""

    def __init__(self, warehouse: Path, target: S3Target, table_format: str):
        super().__init__("lakehouse-verify-")
        self.warehouse = warehouse
        self.target = target
        self.stores = open_stores(warehouse, table_format)
        self.staged: str | None = None  # the table the view `final` holds now

    def text(self, column) -> str:
        return duck_text(column, self.target, typed=True)

    def stage(self, table: Table) -> bool:
        store = self.stores(table.name, lake_schema(table, self.target))
        taken, _ = store.taken()
        if not taken:
            self.staged = None
            return False
        store.register(self.duck, "lake_rows")
        texts = [self.text(column) for column in table.columns]
        self.duck.execute(
            "CREATE OR REPLACE TEMP VIEW final AS SELECT "
            f"{self.text(table.column('id'))} AS id, {row_hash(texts)} AS h, "
            f"CAST({quoted(tenant_column(table))} AS VARCHAR) AS tenant "
            f"FROM lake_rows WHERE NOT {DELETED}"
        )
        self.staged = table.name
        return True

    def problems(self) -> list[str]:
        return []

    def tenants(self) -> dict[str, int]:
        return dict(self.duck.execute("SELECT tenant, count(*) FROM final GROUP BY 1").fetchall())

    def duplicates_in(self, bucket: str) -> int:
        return self.duck.execute(
            "SELECT count(*) - count(DISTINCT id) FROM final WHERE substr(id, 1, 2) = ?", [bucket]
        ).fetchone()[0]

    def row(self, table: Table, key: str) -> dict | None:
        texts = ", ".join(f"{self.text(c)} AS {quoted(c.name)}" for c in table.columns)
        found = self.duck.execute(
            f"SELECT {texts} FROM lake_rows WHERE NOT {DELETED} AND "
            f"{self.text(table.column('id'))} = ?",
            [key],
        ).fetchone()
        return (
            None
            if found is None
            else dict(zip([c.name for c in table.columns], found, strict=True))
        )


def live_tenants(cursor, table: Table) -> dict[str, int]:
    cursor.execute(
        f"SELECT {tenant_column(table)}::text, count(*) FROM {SCHEMA}.{quoted(table.name)} "
        "GROUP BY 1"
    )
    return dict(cursor.fetchall())


def verify_lake(params: dict, warehouse: Path) -> dict[str, LakeReport]:
    """Every table of the warehouse against the live one."""
    built = open_warehouse(warehouse)
    reader = LakeReader(warehouse, built.target, built.table_format)
    reports = {}
    try:
        with session(params) as cursor:
            for name, table in built.tables.items():
                report = LakeReport(compare_table(reader, cursor, table))
                if reader.staged == name:  # compare_table staged it: not read a second time
                    ours, theirs = reader.tenants(), live_tenants(cursor, table)
                    report.tenants = {
                        tenant: (ours.get(tenant, 0), theirs.get(tenant, 0))
                        for tenant in sorted(set(ours) | set(theirs))
                        if ours.get(tenant, 0) != theirs.get(tenant, 0)
                    }
                reports[name] = report
    finally:
        reader.close()
    return reports
