"""Apache Iceberg tables (pyiceberg), namespace `lakehouse`: Athena can MERGE only into Iceberg,
so AWS users will want this one.

The catalog: for a warehouse folder, a SQLite file in it (WAREHOUSE/catalog.db), so the folder
is the whole lakehouse and needs no server. For an s3:// warehouse, SQL tables in PostgreSQL
(the database `lakehouse_catalog` beside the source, or ICEBERG_CATALOG_URL): a SQLite file
cannot live on S3, and a catalog on one machine's disk would hide the tables from every other
machine and engine; PostgreSQL is already there, commits in it are atomic (the catalog's
compare-and-swap of a table's metadata location), and Iceberg's JDBC catalog (Spark, Trino)
reads the same tables. Each s3:// warehouse is its own catalog name in it (see
`catalog_name`).

pyiceberg has no conditional MERGE, so the same one is done in a transaction: the current rows
of the batch's keys are read, each key keeps its newest change (the sequence guard), and the
keys' rows are deleted and the result appended in one atomic commit, whose append snapshot
records the files applied (snapshot summary `lakehouse.files`).

Concurrent applies: every commit is made against the snapshot the apply planned from (the one
`taken()` read): the catalog refuses it if the table moved meanwhile. pyiceberg would then try
again on top of the new snapshot, which for an append means applying a file twice, so our
tables turn its retries off (`commit.retry.num-retries` 0) and the apply plans again instead."""

import functools
import json
import os
import re
import warnings
from collections.abc import Iterator
from urllib.parse import quote

import duckdb
import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import (
    CommitFailedException,
    NamespaceAlreadyExistsError,
    NoSuchTableError,
    TableAlreadyExistsError,
    ValidationException,
)
from pyiceberg.expressions import In

from core.capture.target import CHANGE_SEQUENCE_COLUMN
from core.lake.tables import CAPTURE_KEY, FILES_KEY, CommitConflict, LakeError, register_files
from core.storage import Location, S3Settings, location

CATALOG_FILE = "catalog.db"
NAMESPACE = "lakehouse"
CATALOG_DATABASE = "lakehouse_catalog"
NO_BLIND_RETRIES = {"commit.retry.num-retries": "0"}
# A streamed append is cut into data files of this much Arrow data (held in memory meanwhile).
TABLE_PROPERTIES = {**NO_BLIND_RETRIES, "write.target-file-size-bytes": str(64 * 1024 * 1024)}
CONFLICTS = (CommitFailedException, ValidationException)


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


def catalog_name(warehouse: Location) -> str:
    """The catalog an s3:// warehouse's tables are registered under in the shared PostgreSQL
    catalog: its bucket and prefix as one identifier (s3://lakehouse/demo/ice is
    lakehouse_demo_ice), also usable as a Spark or Trino catalog name."""
    return re.sub(r"[^a-z0-9]+", "_", warehouse.uri().removeprefix("s3://").lower()).strip("_")


@functools.cache
def catalog_database_url() -> str:
    """ICEBERG_CATALOG_URL, or the database `lakehouse_catalog` on the source's server (made on
    first use), as an SQLAlchemy URL."""
    explicit = os.environ.get("ICEBERG_CATALOG_URL")
    if explicit:
        return re.sub(r"^postgres(ql)?://", "postgresql+psycopg2://", explicit)
    import psycopg2
    from django.conf import settings

    database = settings.DATABASES["default"]
    server = {
        "host": database.get("HOST") or "127.0.0.1",
        "port": database.get("PORT") or 5432,
        "user": database.get("USER"),
        "password": database.get("PASSWORD"),
    }
    try:
        connection = psycopg2.connect(dbname=database["NAME"], connect_timeout=5, **server)
        try:
            connection.autocommit = True  # CREATE DATABASE runs outside a transaction
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [CATALOG_DATABASE])
                if cursor.fetchone() is None:
                    cursor.execute(f'CREATE DATABASE "{CATALOG_DATABASE}"')
        finally:
            connection.close()
    except psycopg2.Error as error:
        reason = (str(error).strip().splitlines() or ["no answer"])[0]
        raise LakeError(
            f"the Iceberg catalog of an s3:// warehouse lives in PostgreSQL (database "
            f"{CATALOG_DATABASE} on the source's server), which is out of reach ({reason}): "
            "start the database (`make db`), or set ICEBERG_CATALOG_URL"
        ) from None
    password = quote(server["password"] or "", safe="")
    return (
        f"postgresql+psycopg2://{quote(server['user'] or '', safe='')}:{password}@"
        f"{server['host']}:{server['port']}/{CATALOG_DATABASE}"
    )


def open_catalog(warehouse: Location | str) -> SqlCatalog:
    """The warehouse's catalog, with the namespace made. Two applies that make them at the same
    moment (the catalog's tables, or the namespace) collide in the database: the one that lost
    finds them made, next time round."""
    import sqlalchemy.exc

    warehouse = location(warehouse)
    tries = 3
    while True:
        try:
            catalog = catalog_of(warehouse)
            if (NAMESPACE,) not in catalog.list_namespaces():
                catalog.create_namespace(NAMESPACE)
            return catalog
        except (
            NamespaceAlreadyExistsError,
            sqlalchemy.exc.IntegrityError,
            sqlalchemy.exc.ProgrammingError,
        ):
            tries -= 1
            if not tries:
                raise


def catalog_of(warehouse: Location) -> SqlCatalog:
    if warehouse.is_local:
        folder = warehouse.path.resolve()
        folder.mkdir(parents=True, exist_ok=True)
        return SqlCatalog(
            NAMESPACE, uri=f"sqlite:///{folder / CATALOG_FILE}", warehouse=f"file://{folder}"
        )
    return SqlCatalog(
        catalog_name(warehouse),
        uri=catalog_database_url(),
        warehouse=warehouse.uri(),
        **warehouse.settings.iceberg_properties(),
    )


def has_catalog(warehouse: Location) -> bool:
    """Whether the warehouse has Iceberg tables in its catalog."""
    if warehouse.is_local:
        return (warehouse.path / CATALOG_FILE).exists()
    catalog = open_catalog(warehouse)
    return bool(catalog.list_tables(NAMESPACE))


def iceberg_stores(warehouse: Location):
    catalog = open_catalog(warehouse)
    s3 = None if warehouse.is_local else warehouse.settings
    return lambda name, schema: IcebergStore(catalog, name, iceberg_schema(schema), s3)


class IcebergStore:
    def __init__(
        self, catalog: SqlCatalog, name: str, schema: pa.Schema, s3: S3Settings | None = None
    ):
        self.catalog = catalog
        self.identifier = (NAMESPACE, name)
        self.schema = schema
        self.s3 = s3  # to read the table's data files on S3
        self.table = None  # the snapshot planned from, moved on by our commits

    def load(self):
        try:
            return self.catalog.load_table(self.identifier)
        except NoSuchTableError:
            return None

    def writable(self):
        """The table as planned from: created (without pyiceberg's blind retries), or given
        the columns added to the source since."""
        if self.table is None:
            try:
                self.table = self.catalog.create_table(
                    self.identifier, schema=self.schema, properties=TABLE_PROPERTIES
                )
            except TableAlreadyExistsError:  # another apply made it first: plan again
                raise CommitConflict(f"{self.identifier[1]} was created meanwhile") from None
        table = self.table
        planned = table.metadata.current_snapshot_id
        if table.properties.get("commit.retry.num-retries") != "0":  # a table made elsewhere
            with table.transaction() as transaction:
                transaction.set_properties(NO_BLIND_RETRIES)
        if set(self.schema.names) - set(table.schema().column_names):
            with table.update_schema() as update:
                update.union_by_name(self.schema)
        if table.metadata.current_snapshot_id != planned:  # those commits brought others' too
            raise CommitConflict(f"{self.identifier[1]} changed meanwhile")
        return table

    def taken(self) -> tuple[set[str], str | None]:
        self.table = self.load()
        taken: set[str] = set()
        capture = None
        for snapshot in self.table.snapshots() if self.table else []:
            properties = snapshot.summary.additional_properties if snapshot.summary else {}
            if FILES_KEY in properties:
                taken.update(json.loads(properties[FILES_KEY]))
                capture = properties.get(CAPTURE_KEY, capture)
        return taken, capture

    def append(self, chunks: Iterator[pa.Table], files: list[str], capture_id: str) -> int:
        """The chunks streamed into one snapshot (an empty file is still one, recording it)."""
        properties = {FILES_KEY: json.dumps(files), CAPTURE_KEY: capture_id}
        table = self.writable()
        added = 0

        def batches():
            nonlocal added
            for chunk in chunks:
                added += chunk.num_rows
                yield from chunk.cast(self.schema).to_batches()

        rows = pa.RecordBatchReader.from_batches(self.schema, batches())
        try:
            with table.transaction() as transaction:
                transaction.append(rows, snapshot_properties=properties)
        except CONFLICTS as error:
            raise CommitConflict(str(error)) from None
        return added

    def merge(self, batch: pa.Table, files: list[str], capture_id: str) -> None:
        batch = batch.cast(self.schema)
        properties = {FILES_KEY: json.dumps(files), CAPTURE_KEY: capture_id}
        table = self.writable()
        try:
            if table.current_snapshot() is None:
                with table.transaction() as transaction:
                    transaction.append(batch, snapshot_properties=properties)
                return
            duck = duckdb.connect()
            if self.s3 is not None:
                self.s3.attach_to_duckdb(duck)
            duck.register("incoming", batch)
            self.register(duck, "lake_rows")
            newest = (
                duck.execute(
                    "SELECT * FROM (SELECT * FROM incoming UNION ALL BY NAME "
                    "SELECT * FROM lake_rows WHERE id IN (SELECT id FROM incoming)) "
                    f"QUALIFY row_number() OVER (PARTITION BY id ORDER BY "
                    f"{CHANGE_SEQUENCE_COLUMN} DESC) = 1"
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
        except CONFLICTS as error:
            raise CommitConflict(str(error)) from None

    def dataset(self):
        """The table for reading, as a stream of record batches."""
        return (self.table or self.load()).scan().to_arrow_batch_reader()

    def register(self, duck, name: str) -> None:
        """Make the table (tombstones included) readable in DuckDB as `name`: its data files
        read directly; a table with delete files (written by another engine) is read through
        pyiceberg and kept in DuckDB (on disk past its memory limit)."""
        table = self.table or self.load()
        tasks = list(table.scan().plan_files()) if table else []
        if not any(task.delete_files for task in tasks):
            register_files(duck, name, [task.file.file_path for task in tasks], self.schema)
            return
        duck.register(f"{name}_stream", self.dataset())
        duck.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM {name}_stream")
        duck.unregister(f"{name}_stream")
