"""lakehouse_verify: each lakehouse table (Delta or Iceberg) against the live PostgreSQL table,
the way reladiff and data-diff work: row counts per tenant, then a hash per key range, then
rows only where a range differs (the same comparison verify_cdc makes for a capture, see
core/verify/capture.py). Tombstones (`_tombstone`) are not rows."""

from dataclasses import dataclass, field

from core.capture.target import S3Target
from core.errors import ManifestError
from core.lake.layout import DELETED, lake_schema
from core.lake.store import TableFormat
from core.lake.warehouse import WAREHOUSE_RECORD, open_stores, open_warehouse
from core.source.catalog import SCHEMA, Table
from core.source.quoting import quoted
from core.source.sessions import session
from core.storage import Location, registry
from core.storage.scratch import ScratchDuckDB, s3_of
from core.verify.engine import RangeReader, TableReport, compare_table, duck_text, row_hash
from core.verify.manifest import (
    MANIFEST_FILE,
    checkpoint_tables,
    differences,
    lake_state,
    pick_checkpoint,
    read_manifest,
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


class LakeReader(RangeReader):
    """A warehouse's Delta or Iceberg tables, read with DuckDB through Arrow (no DuckDB
    extension needed)."""

    def __init__(self, warehouse: Location, target: S3Target, table_format: TableFormat):
        super().__init__("lakehouse-verify-", s3=s3_of(warehouse))
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


def verify_lake(params: dict, warehouse: Location) -> dict[str, LakeReport]:
    """Every table of the warehouse against the live one; the registry of places (the pipeline
    page's) records the verdict."""
    built = open_warehouse(warehouse)
    reader = LakeReader(built.location, built.target, built.table_format)
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
    differing = [name for name, report in reports.items() if not report.same]
    registry.record_verdict(warehouse, against="source", same=not differing, differing=differing)
    return reports


def register_folder_table(duck, folder: Location, name: str, relation: str) -> bool:
    """A table of a folder of tables (on disk or S3), whoever wrote it, as a DuckDB relation:
    this project's warehouse, Delta tables (FOLDER/<table>/_delta_log), Iceberg tables in the
    warehouse's catalog (namespace lakehouse), or plain Parquet (FOLDER/<table>/**/*.parquet).
    Delta and Iceberg tables are read as our own are (`register` of their stores, with the
    table's own schema): their data files directly, through DuckDB within its memory limit,
    unless another engine gave them deletion vectors or delete files. False if the folder has
    no such table."""
    from core.lake.delta import DeltaStore
    from core.lake.iceberg import NAMESPACE, IcebergStore, has_catalog, open_catalog

    s3 = s3_of(folder)
    files = folder.files(name)
    if any(file.key.startswith(f"{name}/_delta_log/") for file in files):
        DeltaStore.of_table(folder.uri(name), s3).register(duck, relation)
        return True
    parquet = [file.uri for file in files if file.name.endswith(".parquet")]
    if parquet:
        listed = ", ".join("'" + uri.replace("'", "''") + "'" for uri in parquet)
        duck.execute(
            f"CREATE OR REPLACE TEMP VIEW {relation} AS "
            f"SELECT * FROM read_parquet([{listed}], union_by_name = true)"
        )
        return True
    if has_catalog(folder):
        from pyiceberg.exceptions import NoSuchTableError

        catalog = open_catalog(folder)
        try:
            table = catalog.load_table((NAMESPACE, name))
        except NoSuchTableError:
            return False
        IcebergStore(catalog, name, table.schema().as_arrow(), s3).register(duck, relation)
        return True
    return False


@dataclass
class ManifestReport:
    label: str
    lsn: str
    missing: list[str] = field(default_factory=list)  # tables the folder does not have
    tables: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # table, tenant: what

    @property
    def same(self) -> bool:
        return not self.missing and not any(self.tables.values())


def verify_manifest(
    manifest_folder: Location,
    folder: Location,
    label: str | None = None,
    *,
    manifest_name: str = MANIFEST_FILE,
) -> ManifestReport:
    """A folder of tables (on disk or S3) against a checkpoint of the manifest (the last by
    default); the registry of places (the pipeline page's) records the verdict."""
    manifest = read_manifest(manifest_folder, manifest_name)
    manifest_path = manifest_folder.uri(manifest_name)
    folder.check()
    if folder.exists(WAREHOUSE_RECORD):
        built = open_warehouse(folder)
        if built.capture_id != manifest["capture"]:
            raise ManifestError(
                f"{manifest_path} is from capture {manifest['capture']}, but {folder} was built "
                f"from {built.capture_id}: use that capture's manifest"
            )
    if folder.is_local and not folder.path.is_dir():
        raise ManifestError(f"{folder} is not a folder of tables")
    expected = pick_checkpoint(manifest, label)
    report = ManifestReport(expected["label"], expected["lsn"])
    reader = ScratchDuckDB("lakehouse-manifest-", s3=s3_of(folder))
    try:
        for name, table in checkpoint_tables(expected).items():
            # A relation per table: a view and a table may not replace one another in DuckDB.
            relation = f"pipeline_{name}"
            if not register_folder_table(reader.duck, folder, name, relation):
                report.missing.append(name)
                continue
            precision = manifest["timestamp_precision"]
            try:
                found = lake_state(reader.duck, relation, table, precision)
            except ManifestError as error:  # the table lacks a column: every tenant differs
                report.tables[name] = {"(all)": [str(error)]}
                continue
            report.tables[name] = differences(expected["tables"].get(name, {}), found)
    finally:
        reader.close()
    differing = report.missing + [name for name, tenants in report.tables.items() if tenants]
    against = f"manifest checkpoint {report.label!r}"
    registry.record_verdict(folder, against=against, same=report.same, differing=differing)
    return report
