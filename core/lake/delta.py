"""Delta Lake tables (delta-rs) at WAREHOUSE/<table>: the MERGE with the sequence guard, and
the files applied kept in each commit's metadata."""

import json
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, WriterProperties, write_deltalake
from deltalake.exceptions import TableNotFoundError

from core.lake.apply import CAPTURE_KEY, FILES_KEY, register_files
from core.replication.target import CHANGE_SEQUENCE_COLUMN

# delta-rs buffers a whole row group before writing it (a million rows by default) and reads
# one whole when it merges: smaller ones keep both in bounds.
WRITER = WriterProperties(max_row_group_size=64 * 1024)


class DeltaStore:
    def __init__(self, path: Path, schema: pa.Schema):
        self.path = path
        self.schema = schema

    def taken(self) -> tuple[set[str], str | None]:
        try:
            table = DeltaTable(str(self.path))
        except TableNotFoundError:
            return set(), None
        taken: set[str] = set()
        capture = None
        for commit in table.history():
            if FILES_KEY in commit:
                taken.update(json.loads(commit[FILES_KEY]))
                capture = commit.get(CAPTURE_KEY, capture)
        return taken, capture

    def commit(self, files: list[str], capture_id: str) -> CommitProperties:
        return CommitProperties(
            custom_metadata={FILES_KEY: json.dumps(files), CAPTURE_KEY: capture_id}
        )

    def append(self, chunks: Iterator[pa.Table], files: list[str], capture_id: str) -> int:
        added = 0

        def batches():
            nonlocal added
            for chunk in chunks:
                added += chunk.num_rows
                yield from chunk.cast(self.schema).to_batches()

        write_deltalake(
            str(self.path),
            pa.RecordBatchReader.from_batches(self.schema, batches()),
            mode="append",
            schema_mode="merge",  # a column added during the capture
            writer_properties=WRITER,
            commit_properties=self.commit(files, capture_id),
        )
        return added

    def merge(self, batch: pa.Table, files: list[str], capture_id: str) -> None:
        commit = self.commit(files, capture_id)
        if not (self.path / "_delta_log").exists():
            write_deltalake(
                str(self.path), batch, writer_properties=WRITER, commit_properties=commit
            )
            return
        (
            DeltaTable(str(self.path))
            .merge(
                source=batch,
                predicate="t.id = s.id",
                source_alias="s",
                target_alias="t",
                merge_schema=True,  # a column added during the capture
                writer_properties=WRITER,
                commit_properties=commit,
            )
            .when_matched_update_all(
                predicate=f"s.{CHANGE_SEQUENCE_COLUMN} > t.{CHANGE_SEQUENCE_COLUMN}"
            )
            .when_not_matched_insert_all()
            .execute()
        )

    def dataset(self):
        """The table for reading (a pyarrow dataset: DuckDB scans it without loading it)."""
        return DeltaTable(str(self.path)).to_pyarrow_dataset()

    def register(self, duck, name: str) -> None:
        """Make the table (tombstones included) readable in DuckDB as `name`: its data files
        read directly, unless another writer gave it something that needs delta-rs to read:
        deletion vectors or column mapping, or partitions (whose values are in the log, not
        in the files)."""
        table = DeltaTable(str(self.path))
        if table.protocol().min_reader_version > 1 or table.metadata().partition_columns:
            duck.register(name, table.to_pyarrow_dataset())
            return
        register_files(duck, name, table.file_uris(), self.schema)
