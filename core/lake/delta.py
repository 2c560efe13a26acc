"""Delta Lake tables (delta-rs) at WAREHOUSE/<table>, on disk or on S3, partitioned by
`_bucket`: versions appended by each apply, the files applied kept in each commit's metadata,
and maintenance's compaction of one partition in one commit.

Concurrent writers: every commit of ours is made against the table version it was planned
from (the one `taken()` read), and carries an application transaction (`lakehouse_apply`, one
more than the last), maintenance's too. Delta refuses a commit when another commit with the
same application id landed since its read version, so of two writers only one commits each
step; the other gets a CommitConflict and plans again from what the table now holds. On S3,
delta-rs commits by conditional PUT (`aws_conditional_put`), never by an unsafe rename."""

import contextlib
import json
import math
import time
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import CommitProperties, DeltaTable, QueryBuilder, Transaction, write_deltalake
from deltalake.exceptions import CommitFailedError, TableNotFoundError
from deltalake.transaction import AddAction

from core.errors import CommitConflict
from core.lake.commits import (
    CAPTURE_KEY,
    FILES_KEY,
    TAKEN_KEY,
    Taken,
    last_file_recorded,
    packed_files,
)
from core.lake.layout import BUCKET, stored_schema, with_bucket
from core.lake.reading import (
    register_current,
    register_dataset,
    register_files,
    register_rows,
)
from core.lake.store import NewPartitions, TableStatus
from core.lake.writer import PartitionedWriter, WrittenFile
from core.storage import S3Settings

APPLICATION = "lakehouse_apply"
DELETION_VECTORS = "deletionVectors"


class DeltaStore:
    def __init__(self, uri: str, schema: pa.Schema, s3: S3Settings | None = None):
        self.uri = uri
        self.name = uri.rstrip("/").rsplit("/", 1)[-1]
        self.schema = stored_schema(schema)
        self.s3 = s3
        self.options = s3.delta_options() if s3 is not None else None
        self.table: DeltaTable | None = None  # the version planned from, moved on by our commits

    @classmethod
    def of_table(cls, uri: str, s3: S3Settings | None = None) -> "DeltaStore":
        """The store of an existing table, whoever wrote it, with the table's own schema."""
        store = cls(uri, pa.schema([]), s3)
        store.table = store.load()
        store.schema = pa.schema(store.table.schema().to_arrow())
        return store

    def load(self, version: int | None = None) -> DeltaTable | None:
        try:
            return DeltaTable(self.uri, version=version, storage_options=self.options)
        except TableNotFoundError:
            return None

    def taken(self) -> tuple[set[str], str | None]:
        self.table = self.load()
        taken = Taken()
        for commit in self.table.history() if self.table else []:  # the newest first
            taken.add(commit_metadata(commit))
            if taken.complete:
                break
        return taken.files, taken.capture

    def writable(self) -> DeltaTable:
        """The table as planned from; a new one is created empty first (by whichever apply
        gets there first) and planned from at its first version."""
        if self.table is None:
            DeltaTable.create(
                self.uri,
                self.schema,
                mode="ignore",
                partition_by=[BUCKET],
                storage_options=self.options,
            )
            self.table = self.load(version=0)
        return self.table

    def commit(self, table: DeltaTable, metadata: dict[str, str]) -> CommitProperties:
        step = (table.transaction_version(APPLICATION) or 0) + 1
        return CommitProperties(
            custom_metadata=metadata,
            app_transactions=[Transaction(app_id=APPLICATION, version=step)],
        )

    def append(self, chunks: Iterator[pa.Table], files: list[str], capture_id: str) -> int:
        table = self.writable()
        added = 0
        writer = self.writer()
        for chunk in chunks:
            added += chunk.num_rows
            writer.write(with_bucket(chunk).cast(self.schema))
        metadata = {FILES_KEY: json.dumps(files), CAPTURE_KEY: capture_id}
        self.commit_files(table, writer.close(), "append", metadata)
        return added

    def writer(self) -> PartitionedWriter:
        """Data files without the partition column: Delta keeps its value in the log."""
        schema = self.schema.remove(self.schema.get_field_index(BUCKET))
        return PartitionedWriter(self.uri.rstrip("/"), schema, self.s3, with_bucket=False)

    def commit_files(
        self,
        table: DeltaTable,
        written: list[WrittenFile],
        mode: str,
        metadata: dict[str, str],
        bucket: str | None = None,
    ) -> None:
        """One commit adding the files (and in overwrite mode removing the partition's), made
        against the version planned from."""
        now = int(time.time() * 1000)
        actions = [
            AddAction(
                path=file.path,
                size=file.size,
                partition_values={BUCKET: file.bucket},
                modification_time=now,
                data_change=True,
                stats=json.dumps({"numRecords": file.rows}),
            )
            for file in written
        ]
        try:
            self.add_columns(table)
            table.create_write_transaction(
                actions,
                mode=mode,
                schema=self.schema,
                partition_by=[BUCKET],
                partition_filters=[(BUCKET, "=", bucket)] if bucket is not None else None,
                commit_properties=self.commit(table, metadata),
            )
        except CommitFailedError as error:
            raise CommitConflict(str(error)) from None
        # The next commit is planned from this one: exactly the version it made (a commit of
        # another writer in between would have refused it).
        self.table = self.load(version=table.version() + 1)

    def add_columns(self, table: DeltaTable) -> None:
        """The columns added to the source during the capture, added to the table first (an
        empty append that merges the schema, against the version planned from)."""
        if set(self.schema.names) <= set(pa.schema(table.schema().to_arrow()).names):
            return
        write_deltalake(
            table,
            self.schema.empty_table(),
            mode="append",
            schema_mode="merge",
            partition_by=[BUCKET],
            commit_properties=self.commit(table, {}),
        )  # this moves `table` on to the version it made

    def rows_through_datafusion(self, table: DeltaTable, where: str) -> pa.RecordBatchReader:
        """The table's rows that match `where`, read by delta-rs's DataFusion engine, which
        applies deletion vectors."""
        rows = (
            QueryBuilder().register("stored", table).execute(f"SELECT * FROM stored WHERE {where}")
        )
        return pa.RecordBatchReader.from_stream(rows)

    # Maintenance (maintain.py)

    def rewrite_refused(self) -> str | None:
        """Why maintenance cannot rewrite this table's partitions exactly, if it cannot."""
        features = [f for f in self.foreign_features() if f != DELETION_VECTORS]
        if not features:
            return None
        return (
            f"another engine gave it {', '.join(features)}, which lakehouse_maintain does not "
            "write; maintain it with that engine"
        )

    def register_partition(self, duck, name: str, bucket: str, files: list[str]) -> None:
        """One partition's stored rows in DuckDB as `name`, deletion vectors applied."""
        if DELETION_VECTORS in self.foreign_features():
            where = f"{BUCKET} = '{bucket}'"
            register_rows(duck, name, self.rows_through_datafusion(self.table, where))
        else:
            register_files(duck, name, files, self.schema)

    def partitions(self) -> dict[str, list[str]]:
        """Each partition's data files, as of the version planned from."""
        table = self.table or self.load()
        actions = pa.table(table.get_add_actions(flatten=True)).to_pydict()
        found: dict[str, list[str]] = {}
        for path, bucket in zip(actions["path"], actions[f"partition.{BUCKET}"], strict=True):
            found.setdefault(bucket, []).append(f"{self.uri.rstrip('/')}/{path}")
        return found

    def replace_partitions(self, partitions: NewPartitions, taken: set[str], capture: str) -> None:
        """Each partition's files replaced by its rows, one commit per partition, each
        recording every file taken; CommitConflict if anything committed since the table was
        planned from."""
        metadata = {TAKEN_KEY: packed_files(taken), CAPTURE_KEY: capture}
        for bucket, rows in partitions:
            writer = self.writer()
            for batch in rows():
                writer.write(pa.Table.from_batches([batch]).cast(self.schema))
            self.commit_files(self.table, writer.close(), "overwrite", metadata, bucket)

    def expire(self, hours: float) -> int:
        """Data files no version of the last `hours` reads, deleted; how many."""
        table = self.load()
        if table is None:
            return 0
        removed = table.vacuum(
            retention_hours=math.ceil(hours), enforce_retention_duration=False, dry_run=False
        )
        return len(removed)

    def status(self) -> TableStatus | None:
        table = self.load()
        if table is None:
            return None
        actions = pa.table(table.get_add_actions(flatten=True))
        rows = actions.column("num_records") if "num_records" in actions.column_names else None
        # The last applies' commits (Spark's too): a maintenance run adds up to 16 of its own.
        commits = [commit_metadata(commit) for commit in reversed(table.history(40))]
        return TableStatus(
            version=str(table.version()),
            rows=None if rows is None else int(pc.sum(rows).as_py() or 0),
            last_file=last_file_recorded([c[FILES_KEY] for c in commits if FILES_KEY in c]),
        )

    def foreign_features(self) -> list[str]:
        table = self.table or self.load()
        if table is None:
            return []
        protocol = table.protocol()
        found = list(protocol.reader_features or [])
        if protocol.min_reader_version == 2:  # column mapping, before table features
            found.append("columnMapping")
        partitions = table.metadata().partition_columns
        if partitions not in ([], [BUCKET]):
            found.append(f"partitions by {', '.join(partitions)}")
        return found

    def register(self, duck, name: str) -> None:
        """Make the table's current state (tombstones included) readable in DuckDB as `name`:
        its data files read directly, unless another writer gave it something the files alone
        do not show. Then delta-rs reads it: through pyarrow for column mapping or partitions
        other than ours (whose values are in the log); through its DataFusion engine for
        deletion vectors, which delta-rs's pyarrow reader refuses (kept in DuckDB, on disk past
        its memory limit)."""
        table = self.table or self.load()
        stored = f"{name}_stored"
        features = self.foreign_features()
        if DELETION_VECTORS in features:
            register_rows(duck, stored, self.rows_through_datafusion(table, "true"))
        elif features:
            register_dataset(duck, stored, table.to_pyarrow_dataset())
        else:
            register_files(duck, stored, table.file_uris(), self.schema)
        register_current(duck, name, stored)


def files_applied(commit: dict) -> list[str] | None:
    """The files a Delta commit applied, whichever engine made it."""
    metadata = commit_metadata(commit)
    return json.loads(metadata[FILES_KEY]) if FILES_KEY in metadata else None


def commit_metadata(commit: dict) -> dict:
    """A Delta commit's properties: delta-rs keeps ours at the top of its commitInfo, Spark
    in its userMetadata (a JSON object, ours)."""
    found = dict(commit)
    extra = commit.get("userMetadata")
    if isinstance(extra, str) and extra.startswith("{"):
        with contextlib.suppress(ValueError):  # someone else's userMetadata
            found.update(json.loads(extra))
    return found
