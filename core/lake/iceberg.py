"""Apache Iceberg tables (pyiceberg) in a SQLite catalog at WAREHOUSE/catalog.db, namespace
`lakehouse`: Athena can MERGE only into Iceberg, so AWS users will want this one.

pyiceberg has no conditional MERGE, so the same one is done in a transaction: the current rows
of the batch's keys are read, each key keeps its newest change (the sequence guard), and the
keys' rows are deleted and the result appended in one atomic commit, whose append snapshot
records the files applied (snapshot summary `lakehouse.files`)."""

import json
import warnings
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import NoSuchTableError
from pyiceberg.expressions import In

from core.lake.apply import CAPTURE_KEY, FILES_KEY, register_files
from core.replication.target import CHANGE_SEQUENCE_COLUMN

CATALOG_FILE = "catalog.db"
NAMESPACE = "lakehouse"


def iceberg_type(kind: pa.DataType) -> pa.DataType:
    """Iceberg keeps timestamps in microseconds (a millisecond one widens without loss) and
    integers as 32 or 64 bits."""
    if pa.types.is_timestamp(kind):
        return pa.timestamp("us", tz=kind.tz)
    if pa.types.is_int16(kind) or pa.types.is_int8(kind):
        return pa.int32()
    return kind


def iceberg_schema(schema: pa.Schema) -> pa.Schema:
    return pa.schema([pa.field(f.name, iceberg_type(f.type)) for f in schema])


def open_catalog(warehouse: Path) -> SqlCatalog:
    warehouse.mkdir(parents=True, exist_ok=True)
    catalog = SqlCatalog(
        NAMESPACE,
        uri=f"sqlite:///{warehouse.resolve() / CATALOG_FILE}",
        warehouse=f"file://{warehouse.resolve()}",
    )
    if (NAMESPACE,) not in catalog.list_namespaces():
        catalog.create_namespace(NAMESPACE)
    return catalog


def iceberg_stores(warehouse: Path):
    catalog = open_catalog(warehouse)
    return lambda name, schema: IcebergStore(catalog, name, iceberg_schema(schema))


class IcebergStore:
    def __init__(self, catalog: SqlCatalog, name: str, schema: pa.Schema):
        self.catalog = catalog
        self.identifier = (NAMESPACE, name)
        self.schema = schema

    def table(self):
        try:
            return self.catalog.load_table(self.identifier)
        except NoSuchTableError:
            return None

    def writable(self):
        """The table, created, or given the columns added to the source since."""
        table = self.table()
        if table is None:
            return self.catalog.create_table(self.identifier, schema=self.schema)
        if set(self.schema.names) - set(table.schema().column_names):
            with table.update_schema() as update:
                update.union_by_name(self.schema)
            table = self.catalog.load_table(self.identifier)
        return table

    def taken(self) -> tuple[set[str], str | None]:
        table = self.table()
        taken: set[str] = set()
        capture = None
        for snapshot in table.snapshots() if table else []:
            properties = snapshot.summary.additional_properties if snapshot.summary else {}
            if FILES_KEY in properties:
                taken.update(json.loads(properties[FILES_KEY]))
                capture = properties.get(CAPTURE_KEY, capture)
        return taken, capture

    def append(self, chunks: Iterator[pa.Table], files: list[str], capture_id: str) -> int:
        """Each chunk is its own snapshot (and data file), all committed at once."""
        properties = {FILES_KEY: json.dumps(files), CAPTURE_KEY: capture_id}
        table = self.writable()
        added = 0
        with table.transaction() as transaction:
            for chunk in chunks:
                transaction.append(chunk.cast(self.schema), snapshot_properties=properties)
                added += chunk.num_rows
            if added == 0:  # an empty file is still recorded as taken
                transaction.append(self.schema.empty_table(), snapshot_properties=properties)
        return added

    def merge(self, batch: pa.Table, files: list[str], capture_id: str) -> None:
        batch = batch.cast(self.schema)
        properties = {FILES_KEY: json.dumps(files), CAPTURE_KEY: capture_id}
        table = self.writable()
        if table.current_snapshot() is None:
            table.append(batch, snapshot_properties=properties)
            return
        duck = duckdb.connect()
        duck.register("incoming", batch)
        self.register(duck, "lake_rows")
        newest = (
            duck.execute(
                "SELECT * FROM (SELECT * FROM incoming UNION ALL BY NAME "
                "SELECT * FROM lake_rows WHERE id IN (SELECT id FROM incoming)) "
                f"QUALIFY row_number() OVER (PARTITION BY id ORDER BY {CHANGE_SEQUENCE_COLUMN} "
                "DESC) = 1"
            )
            .to_arrow_table()
            .select(self.schema.names)
            .cast(self.schema)
        )
        duck.close()
        keys = In("id", batch.column("id").to_pylist())
        with table.transaction() as transaction, warnings.catch_warnings():
            # pyiceberg warns when none of the keys is in the table yet: all new, as may be
            warnings.filterwarnings("ignore", "Delete operation did not match any records")
            transaction.delete(keys)
            transaction.append(newest, snapshot_properties=properties)

    def dataset(self):
        """The table for reading, as a stream of record batches."""
        table = self.table()
        return table.scan().to_arrow_batch_reader()

    def register(self, duck, name: str) -> None:
        """Make the table (tombstones included) readable in DuckDB as `name`: its data files
        read directly; a table with delete files (written by another engine) is read through
        pyiceberg and kept in DuckDB (on disk past its memory limit)."""
        table = self.table()
        tasks = list(table.scan().plan_files()) if table else []
        if not any(task.delete_files for task in tasks):
            register_files(duck, name, [task.file.file_path for task in tasks], self.schema)
            return
        duck.register(f"{name}_stream", self.dataset())
        duck.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM {name}_stream")
        duck.unregister(f"{name}_stream")
