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

Tables are partitioned by `_bucket` (identity). Each apply appends its versions as one
snapshot, whose summary records the files applied (`lakehouse.files`); maintenance replaces
partitions' files in one snapshot too, so time travel never shows a state half way through
(no snapshot between a delete and its append). The data files are written by our bounded
writer (tables.PartitionedWriter) with the table's field ids, and committed with pyiceberg's
`parquet_file_to_data_file` (its statistics and partition read from the file's footer):
pyiceberg's own append holds a partitioned table's rows in memory, and each call of it is a
snapshot of its own.

Concurrent writers: every commit is made against the snapshot it was planned from (the one
`taken()` read): the catalog refuses it if the table moved meanwhile. pyiceberg would then try
again on top of the new snapshot, which for an append means applying a file twice, so our
tables turn its retries off (`commit.retry.num-retries` 0) and the writer plans again."""

import contextlib
import functools
import json
import os
import re
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pyarrow as pa
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import (
    CommitFailedException,
    NamespaceAlreadyExistsError,
    NoSuchTableError,
    TableAlreadyExistsError,
    ValidationException,
)
from pyiceberg.expressions import EqualTo
from pyiceberg.io.pyarrow import parquet_file_to_data_file, schema_to_pyarrow
from pyiceberg.manifest import DataFileContent

from core.errors import CommitConflict, EqualityDeletes, LakeError
from core.lake.commits import (
    CAPTURE_KEY,
    FILES_KEY,
    TAKEN_KEY,
    Taken,
    last_file_recorded,
    packed_files,
)
from core.lake.layout import BUCKET, stored_schema, with_bucket
from core.lake.reading import register_current, register_files, register_rows
from core.lake.store import NewPartitions, TableStatus
from core.lake.writer import PartitionedWriter
from core.storage import Location, S3Settings

# What pyiceberg says of a table with equality deletes (it reads position deletes).
EQUALITY_DELETES = "does not yet support equality deletes"
DELETE_FILES = {
    DataFileContent.POSITION_DELETES: "position delete files",
    DataFileContent.EQUALITY_DELETES: "equality delete files",
}

CATALOG_FILE = "catalog.db"
NAMESPACE = "lakehouse"
CATALOG_DATABASE = "lakehouse_catalog"
NO_BLIND_RETRIES = {"commit.retry.num-retries": "0"}
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


def open_catalog(warehouse: Location) -> SqlCatalog:
    """The warehouse's catalog, with the namespace made. Two applies that make them at the same
    moment (the catalog's tables, or the namespace) collide in the database: the one that lost
    finds them made, next time round."""
    import sqlalchemy.exc

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
        # Write-ahead logging: a reader (Spark's JDBC catalog keeps its connections open)
        # never blocks a commit. It is kept in the file.
        with contextlib.closing(sqlite3.connect(folder / CATALOG_FILE)) as database:
            database.execute("PRAGMA journal_mode=WAL")
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
    return lambda name, schema: IcebergStore(
        catalog, name, stored_schema(iceberg_schema(schema)), s3
    )


class IcebergStore:
    def __init__(
        self, catalog: SqlCatalog, name: str, schema: pa.Schema, s3: S3Settings | None = None
    ):
        self.catalog = catalog
        self.identifier = (NAMESPACE, name)
        self.name = name
        self.schema = schema
        self.s3 = s3  # to read the table's data files on S3
        self.table = None  # the snapshot planned from, moved on by our commits
        self.features_of: tuple[int, list[str]] | None = None  # a snapshot's foreign_features

    def load(self):
        try:
            return self.catalog.load_table(self.identifier)
        except NoSuchTableError:
            return None

    def writable(self):
        """The table as planned from: created partitioned (without pyiceberg's blind retries),
        or given the columns added to the source since."""
        if self.table is None:
            try:
                with (
                    self.catalog.create_table_transaction(
                        self.identifier, schema=self.schema, properties=TABLE_PROPERTIES
                    ) as creation,
                    creation.update_spec() as spec,
                ):
                    spec.add_identity(BUCKET)
            except (TableAlreadyExistsError, *CONFLICTS):  # another apply made it: plan again
                raise CommitConflict(f"{self.identifier[1]} was created meanwhile") from None
            self.table = self.load()
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
        taken = Taken()
        snapshots = self.table.snapshots() if self.table else []
        for snapshot in sorted(snapshots, key=lambda s: s.sequence_number, reverse=True):
            taken.add(snapshot.summary.additional_properties if snapshot.summary else {})
            if taken.complete:
                break
        return taken.files, taken.capture

    def append(self, chunks: Iterator[pa.Table], files: list[str], capture_id: str) -> int:
        """The chunks written into one snapshot (an empty file is still one, recording it)."""
        properties = {FILES_KEY: json.dumps(files), CAPTURE_KEY: capture_id}
        added = 0

        def counted():
            nonlocal added
            for chunk in chunks:
                added += chunk.num_rows
                yield with_bucket(chunk).cast(self.schema)

        self.commit(properties, [], counted())
        return added

    def commit(self, properties: dict, removed: list, rows: Iterator[pa.Table]) -> None:
        """One snapshot: `removed` data files out, `rows` written in; an append if nothing
        goes out. CommitConflict if the table moved since it was planned from."""
        table = self.writable()
        # Files written with the table's field ids, as pyiceberg writes its own.
        folder = f"{table.location().rstrip('/')}/data"
        writer = PartitionedWriter(
            folder, schema_to_pyarrow(table.schema()), self.s3, with_bucket=True
        )
        for chunk in rows:
            writer.write(chunk)
        written = writer.close()
        try:
            with table.transaction() as transaction:
                snapshot = transaction.update_snapshot(snapshot_properties=properties)
                with snapshot.overwrite() if removed else snapshot.fast_append() as producer:
                    for data_file in removed:
                        producer.delete_data_file(data_file)
                    for file in written:
                        producer.append_data_file(
                            parquet_file_to_data_file(
                                table.io, transaction.table_metadata, f"{folder}/{file.path}"
                            )
                        )
        except CONFLICTS as error:
            raise CommitConflict(str(error)) from None

    # Maintenance (maintain.py)

    def data_files(self) -> dict[str, list]:
        """Each partition's data files (pyiceberg's DataFile), as of the snapshot planned from."""
        found: dict[str, list] = {}
        for task in self.files_to_read() if self.table.current_snapshot() else []:
            found.setdefault(task.file.partition[0], []).append(task.file)
        return found

    def partitions(self) -> dict[str, list[str]]:
        """Each partition's data files, as of the snapshot planned from."""
        return {
            bucket: [data_file.file_path for data_file in files]
            for bucket, files in self.data_files().items()
        }

    def rewrite_refused(self) -> str | None:
        """Why maintenance cannot rewrite this table's partitions exactly, if it cannot:
        never, since pyiceberg applies position deletes, and one line is raised for equality
        deletes, which it cannot read."""
        if DELETE_FILES[DataFileContent.EQUALITY_DELETES] in self.foreign_features():
            raise EqualityDeletes(self.name)
        return None

    def register_partition(self, duck, name: str, bucket: str, files: list[str]) -> None:
        """One partition's stored rows in DuckDB as `name`, delete files applied."""
        if self.foreign_features():
            scan = self.table.scan(row_filter=EqualTo(BUCKET, bucket))
            register_rows(duck, name, scan.to_arrow_batch_reader())
        else:
            register_files(duck, name, files, self.schema)

    def replace_partitions(self, partitions: NewPartitions, taken: set[str], capture: str) -> None:
        """Those partitions' files replaced by their rows, written one partition after
        another, in one snapshot that records every file taken."""
        properties = {TAKEN_KEY: packed_files(taken), CAPTURE_KEY: capture}
        files = self.data_files()
        removed = [data_file for bucket, _ in partitions for data_file in files[bucket]]
        rows = (pa.Table.from_batches([batch]) for _, reader in partitions for batch in reader())
        self.commit(properties, removed, rows)

    def expire(self, hours: float) -> int:
        """Snapshots older than `hours` expired, but never the newest that records every file
        taken, and the data files only they read deleted; how many files."""
        table = self.load()
        if table is None:
            return 0
        cutoff = datetime.now(UTC) - timedelta(hours=hours)
        for snapshot in sorted(table.snapshots(), key=lambda s: s.sequence_number, reverse=True):
            properties = snapshot.summary.additional_properties if snapshot.summary else {}
            if TAKEN_KEY in properties:
                kept = datetime.fromtimestamp(snapshot.timestamp_ms / 1000, UTC)
                cutoff = min(cutoff, kept)
                break
        else:
            return 0  # nothing records the files taken: every snapshot is still needed
        before = set(table.inspect.all_files().column("file_path").to_pylist())
        try:
            table.maintenance.expire_snapshots().older_than(cutoff).commit()
        except CONFLICTS as error:
            raise CommitConflict(str(error)) from None
        table = self.load()
        gone = before - set(table.inspect.all_files().column("file_path").to_pylist())
        for path in gone:
            table.io.delete(path)
        return len(gone)

    def status(self) -> TableStatus | None:
        table = self.load()
        if table is None:
            return None
        snapshot = table.current_snapshot()
        summary = snapshot.summary.additional_properties if snapshot and snapshot.summary else {}
        recorded = [
            s.summary.additional_properties[FILES_KEY]
            for s in table.snapshots()[-40:]
            if s.summary and FILES_KEY in s.summary.additional_properties
        ]
        return TableStatus(
            version=str(snapshot.snapshot_id) if snapshot else "none",
            rows=int(summary["total-records"]) if "total-records" in summary else None,
            last_file=last_file_recorded(recorded),
        )

    def dataset(self):
        """The table for reading, as a stream of record batches."""
        return (self.table or self.load()).scan().to_arrow_batch_reader()

    def foreign_features(self) -> list[str]:
        table = self.table or self.load()
        if table is None or table.current_snapshot() is None:
            return []
        snapshot = table.current_snapshot().snapshot_id
        if self.features_of is None or self.features_of[0] != snapshot:
            # Planned once a snapshot: maintenance asks for every partition it reads.
            try:
                tasks = self.files_to_read()
                found = sorted({DELETE_FILES[f.content] for t in tasks for f in t.delete_files})
            except EqualityDeletes:
                found = [DELETE_FILES[DataFileContent.EQUALITY_DELETES]]
            self.features_of = (snapshot, found)
        return self.features_of[1]

    def files_to_read(self) -> list:
        """The scan's tasks (data files, each with its delete files) of the table as planned
        from; one line for what pyiceberg cannot read."""
        table = self.table or self.load()
        try:
            return list(table.scan().plan_files())
        except ValueError as error:
            if EQUALITY_DELETES not in str(error):
                raise
            raise EqualityDeletes(self.name) from None

    def register(self, duck, name: str) -> None:
        """Make the table's current state (tombstones included) readable in DuckDB as `name`:
        its data files read directly; a table with delete files (written by another engine)
        is read through pyiceberg and kept in DuckDB (on disk past its memory limit)."""
        table = self.table or self.load()
        tasks = self.files_to_read() if table else []
        stored = f"{name}_stored"
        if not any(task.delete_files for task in tasks):
            register_files(duck, stored, [task.file.file_path for task in tasks], self.schema)
        else:
            register_rows(duck, stored, self.dataset())
        register_current(duck, name, stored)
