"""Delta Lake tables (delta-rs) at WAREHOUSE/<table>, on disk or on S3: the MERGE with the
sequence guard, and the files applied kept in each commit's metadata.

Concurrent applies: every commit of ours is made against the table version the apply planned
from (the one `taken()` read), and carries an application transaction (`lakehouse_apply`,
one more than the last). Delta refuses a commit when another commit with the same application
id landed since its read version, so of two applies only one commits each step; the other gets
a CommitConflict and plans again from what the table now holds. On S3, delta-rs commits by
conditional PUT (`aws_conditional_put`), never by an unsafe rename."""

import json
from collections.abc import Iterator

import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, Transaction, WriterProperties, write_deltalake
from deltalake.exceptions import CommitFailedError, TableNotFoundError

from core.capture.target import CHANGE_SEQUENCE_COLUMN
from core.lake.tables import CAPTURE_KEY, FILES_KEY, CommitConflict, register_files
from core.storage import S3Settings

# delta-rs buffers a whole row group before writing it (a million rows by default) and reads
# one whole when it merges: smaller ones keep both in bounds.
WRITER = WriterProperties(max_row_group_size=64 * 1024)
APPLICATION = "lakehouse_apply"


class DeltaStore:
    def __init__(self, uri: str, schema: pa.Schema, s3: S3Settings | None = None):
        self.uri = uri
        self.schema = schema
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
        if self.table is None:
            return set(), None
        taken: set[str] = set()
        capture = None
        for commit in self.table.history():
            if FILES_KEY in commit:
                taken.update(json.loads(commit[FILES_KEY]))
                capture = commit.get(CAPTURE_KEY, capture)
        return taken, capture

    def writable(self) -> DeltaTable:
        """The table as planned from; a new one is created empty first (by whichever apply
        gets there first) and planned from at its first version."""
        if self.table is None:
            DeltaTable.create(self.uri, self.schema, mode="ignore", storage_options=self.options)
            self.table = self.load(version=0)
        return self.table

    def commit(self, table: DeltaTable, files: list[str], capture_id: str) -> CommitProperties:
        step = (table.transaction_version(APPLICATION) or 0) + 1
        return CommitProperties(
            custom_metadata={FILES_KEY: json.dumps(files), CAPTURE_KEY: capture_id},
            app_transactions=[Transaction(app_id=APPLICATION, version=step)],
        )

    def append(self, chunks: Iterator[pa.Table], files: list[str], capture_id: str) -> int:
        added = 0

        def batches():
            nonlocal added
            for chunk in chunks:
                added += chunk.num_rows
                yield from chunk.cast(self.schema).to_batches()

        table = self.writable()
        try:
            write_deltalake(
                table,
                pa.RecordBatchReader.from_batches(self.schema, batches()),
                mode="append",
                schema_mode="merge",  # a column added during the capture
                writer_properties=WRITER,
                commit_properties=self.commit(table, files, capture_id),
            )
        except CommitFailedError as error:
            raise CommitConflict(str(error)) from None
        return added

    def merge(self, batch: pa.Table, files: list[str], capture_id: str) -> None:
        table = self.writable()
        try:
            (
                table.merge(
                    source=batch,
                    predicate="t.id = s.id",
                    source_alias="s",
                    target_alias="t",
                    merge_schema=True,  # a column added during the capture
                    writer_properties=WRITER,
                    commit_properties=self.commit(table, files, capture_id),
                )
                .when_matched_update_all(
                    predicate=f"s.{CHANGE_SEQUENCE_COLUMN} > t.{CHANGE_SEQUENCE_COLUMN}"
                )
                .when_not_matched_insert_all()
                .execute()
            )
        except CommitFailedError as error:
            raise CommitConflict(str(error)) from None

    def dataset(self):
        """The table for reading (a pyarrow dataset: DuckDB scans it without loading it)."""
        return (self.table or self.load()).to_pyarrow_dataset()

    def register(self, duck, name: str) -> None:
        """Make the table (tombstones included) readable in DuckDB as `name`: its data files
        read directly, unless another writer gave it something that needs delta-rs to read:
        deletion vectors or column mapping, or partitions (whose values are in the log, not
        in the files)."""
        table = self.table or self.load()
        if table.protocol().min_reader_version > 1 or table.metadata().partition_columns:
            duck.register(name, table.to_pyarrow_dataset())
            return
        register_files(duck, name, table.file_uris(), self.schema)
