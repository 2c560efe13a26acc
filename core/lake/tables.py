"""What every lakehouse table store shares (delta.py, iceberg.py; the apply in apply.py): the
table's shape and layout, how it is read, the bookkeeping each commit carries, and the errors.

A lakehouse table is the source's columns, the commit time and change sequence of each row's
last change, and whether that change deleted it (a tombstone: see apply.py).

Its layout: the table holds *versions* of each key, appended by each apply, and is read as its
current state, the newest version of each key (`current_rows`); lakehouse_maintain compacts it
back to one version per key (maintain.py). It is partitioned by `_bucket`, the first hex digit
of the key, so that maintenance takes one sixteenth of a table at a time, and a key's versions
are always in one partition.

Each commit of ours records the capture files it applied (FILES_KEY) and the capture they came
from (CAPTURE_KEY); a maintenance commit also records every file applied until then
(TAKEN_KEY), so that the older commits can be expired without the table forgetting them."""

import base64
import json
import uuid
import zlib
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyarrow import fs

from core.capture.files import arrow_type
from core.capture.schema import Table
from core.capture.target import CHANGE_SEQUENCE_COLUMN, S3Target
from core.errors import ProjectError
from core.storage import S3Settings

DELETED = "_tombstone"  # a deleted key is kept as a tombstone (apply.py); Iceberg reserves _deleted
BUCKET = "_bucket"  # the partition: the key's first hex digit (see above)
FILES_KEY = "lakehouse.files"
CAPTURE_KEY = "lakehouse.capture"
TAKEN_KEY = "lakehouse.taken"  # every file applied until this commit, compressed
LAYOUT = 3  # 1: one row per key, by MERGE; 2: versions, bucketed; 3: `_tombstone`, not `_deleted`


class LakeError(ProjectError):
    """One line for the user: what is wrong and what to do; nothing was applied."""


class CommitConflict(LakeError):
    """Another writer committed to the table since this apply planned: plan again."""


def lake_schema(table: Table, target: S3Target) -> pa.Schema:
    """A lakehouse table: the source's columns, the commit time and change sequence of the
    row's last change, and whether that change deleted it."""
    fields = [pa.field(column.name, arrow_type(column.type, target)) for column in table.columns]
    fields += [
        pa.field(target.timestamp_column_name, pa.string()),
        pa.field(CHANGE_SEQUENCE_COLUMN, pa.string()),
        pa.field(DELETED, pa.bool_()),
    ]
    return pa.schema(fields)


def stored_schema(schema: pa.Schema) -> pa.Schema:
    """The lake schema as stored: with the partition column."""
    return schema.append(pa.field(BUCKET, pa.string()))


def with_bucket(rows: pa.Table) -> pa.Table:
    return rows.append_column(BUCKET, pc.utf8_slice_codeunits(rows.column("id"), 0, 1))


def packed_files(names: Iterable[str]) -> str:
    """A set of file names, as few bytes as they compress to (they share long prefixes)."""
    text = json.dumps(sorted(names)).encode()
    return base64.b64encode(zlib.compress(text, 9)).decode()


def unpacked_files(packed: str) -> set[str]:
    return set(json.loads(zlib.decompress(base64.b64decode(packed))))


class Taken:
    """The files a table has taken, gathered from its commits newest first: each commit's own,
    until one that records all before it."""

    def __init__(self):
        self.files: set[str] = set()
        self.capture: str | None = None
        self.complete = False

    def add(self, properties: dict) -> None:
        """Take in one commit's properties; `complete` once a commit recorded everything."""
        if FILES_KEY in properties:
            self.files.update(json.loads(properties[FILES_KEY]))
            self.capture = self.capture or properties.get(CAPTURE_KEY)
        if TAKEN_KEY in properties:
            self.files.update(unpacked_files(properties[TAKEN_KEY]))
            self.capture = self.capture or properties.get(CAPTURE_KEY)
            self.complete = True


# Partitions to replace, each with a function giving its new rows (maintain.py).
NewPartitions = list[tuple[str, Callable[[], pa.RecordBatchReader]]]

# Data files are written as the rows come, a row group of ROW_GROUP_ROWS per partition held at
# most (sixteen partitions at once: memory stays bounded whatever a file's size), and closed at
# FILE_BYTES.
ROW_GROUP_ROWS = 8 * 1024
FILE_BYTES = 128 * 1024 * 1024


def give_back_freed_memory() -> None:
    """Arrow's default allocator in the wheels (mimalloc) keeps the pages it freed; jemalloc,
    told to, gives them back at once: a 100 MB lower peak for an apply here, the same speed."""
    try:
        pa.set_memory_pool(pa.jemalloc_memory_pool())
        pa.jemalloc_set_decay_ms(0)
    except NotImplementedError:  # a pyarrow built without it
        pa.set_memory_pool(pa.system_memory_pool())


@dataclass(frozen=True)
class WrittenFile:
    bucket: str
    path: str  # relative to the folder written into
    size: int
    rows: int


class PartitionedWriter:
    """Rows written into Parquet files under FOLDER/_bucket=X/, per partition, as they come.
    Both formats' own writers hold every partition's file in memory until it is done (delta-rs
    1.6 all the rows it is given: 600 MB for `large`'s 470,000 events); this one holds a row
    group per partition, and encodes on two threads while the rows are read. The stores commit
    the files it wrote."""

    def __init__(
        self, folder_uri: str, schema: pa.Schema, s3: S3Settings | None, with_bucket: bool
    ):
        if folder_uri.startswith("s3://"):
            self.filesystem, self.folder = s3.arrow_filesystem, folder_uri.removeprefix("s3://")
        else:
            self.filesystem = fs.LocalFileSystem()
            self.folder = folder_uri.removeprefix("file://")
        self.schema = schema  # as written (without the partition column for Delta)
        self.with_bucket = with_bucket
        self.held: dict[str, list[pa.Table]] = {}
        self.open: dict[str, OpenFile] = {}
        self.written: list[WrittenFile] = []
        self.encoding = ThreadPoolExecutor(max_workers=2)

    def write(self, rows: pa.Table) -> None:
        column = rows.column(BUCKET)
        for bucket in pc.unique(column).to_pylist():
            part = rows.filter(pc.equal(column, bucket))
            if not self.with_bucket:
                part = part.drop_columns([BUCKET])
            self.held.setdefault(bucket, []).append(part.cast(self.schema))
            if sum(len(held) for held in self.held[bucket]) >= ROW_GROUP_ROWS:
                self.flush(bucket)

    def flush(self, bucket: str) -> None:
        rows = pa.concat_tables(self.held.pop(bucket, []))
        if not rows.num_rows:
            return
        current = self.open.get(bucket)
        if current is not None:
            current.wait()  # a partition's row groups go in order
            if current.sink.tell() >= FILE_BYTES:
                self.finish(bucket)
        if bucket not in self.open:
            name = f"{BUCKET}={bucket}/{uuid.uuid4()}.parquet"
            if isinstance(self.filesystem, fs.LocalFileSystem):
                self.filesystem.create_dir(f"{self.folder}/{BUCKET}={bucket}", recursive=True)
            sink = self.filesystem.open_output_stream(f"{self.folder}/{name}")
            self.open[bucket] = OpenFile(name, sink, pq.ParquetWriter(sink, self.schema))
        target = self.open[bucket]
        target.rows += rows.num_rows
        target.pending = self.encoding.submit(
            target.writer.write_table, rows, row_group_size=ROW_GROUP_ROWS
        )

    def finish(self, bucket: str) -> None:
        target = self.open.pop(bucket)
        target.wait()
        target.writer.close()
        size = target.sink.tell()
        target.sink.close()
        self.written.append(WrittenFile(bucket, target.name, size, target.rows))

    def close(self) -> list[WrittenFile]:
        try:
            for bucket in list(self.held):
                self.flush(bucket)
            for bucket in list(self.open):
                self.finish(bucket)
        finally:
            self.encoding.shutdown()
        return self.written


@dataclass
class OpenFile:
    name: str
    sink: object
    writer: pq.ParquetWriter
    rows: int = 0
    pending: Future | None = None

    def wait(self) -> None:
        if self.pending is not None:
            self.pending.result()


class TableStore(Protocol):
    """One lakehouse table in one format."""

    def taken(self) -> tuple[set[str], str | None]:
        """The capture files the table has taken, and the capture it was built from, as of
        the table's current version: the version the next commits are planned from."""

    def append(self, chunks: Iterator[pa.Table], files: list[str], capture_id: str) -> int:
        """Add versions of keys, in one commit that records `files`; the number of rows added.
        CommitConflict if the table moved since it was planned from."""

    def register(self, duck, name: str) -> None:
        """Make the table's current state (tombstones included) readable in a DuckDB
        connection as `name`."""

    def partitions(self) -> dict[str, list[str]]:
        """Each partition's data files, as of the version planned from."""

    def replace_partitions(self, partitions: NewPartitions, taken: set[str], capture: str) -> None:
        """Those partitions' files replaced by their new rows, the commits recording every
        file taken (TAKEN_KEY); CommitConflict if the table moved since it was planned from."""

    def expire(self, hours: float) -> int:
        """History older than `hours` expired, with the data files only it read; how many."""


def register_files(duck, name: str, paths: list[str], schema: pa.Schema) -> None:
    """A table that is exactly its Parquet data files (no deletion vectors, no delete files),
    as a DuckDB view: DuckDB streams them within its memory limit, whatever the table's size."""
    if not paths:
        duck.register(name, schema.empty_table())
        return
    listed = ", ".join("'" + path.replace("'", "''") + "'" for path in paths)
    files = f"read_parquet([{listed}], union_by_name = true)"
    present = set(duck.sql(f"SELECT * FROM {files} LIMIT 0").columns)
    # A column added to the table that no data file holds yet: NULL in every row. Delta keeps
    # a partition's value in its log, not in the files: ours is the key's first digit.
    added = "".join(
        ', substr(id, 1, 1) AS "_bucket"' if n == BUCKET else f', NULL AS "{n}"'
        for n in schema.names
        if n not in present
    )
    duck.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT *{added} FROM {files}")


def register_current(duck, name: str, stored: str) -> None:
    """`name`: the current state of the table whose stored versions are `stored`, the newest
    version of each key (tombstones included), without the partition column. A table written
    elsewhere without our columns is taken as it is."""
    columns = duck.sql(f"SELECT * FROM {stored} LIMIT 0").columns
    shown = f"* EXCLUDE ({BUCKET})" if BUCKET in columns else "*"
    newest = (
        f"QUALIFY row_number() OVER (PARTITION BY id ORDER BY {CHANGE_SEQUENCE_COLUMN} DESC) = 1"
        if {"id", CHANGE_SEQUENCE_COLUMN} <= set(columns)
        else ""
    )
    duck.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT {shown} FROM {stored} {newest}")
