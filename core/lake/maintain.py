"""lakehouse_maintain: a warehouse's tables kept small and quick to read, while applies go on.

Per table, partition by partition (`_bucket`, a sixteenth of the keys): the versions the
applies appended are compacted to the newest per key, and the tombstones that can go are
dropped; the files of the partitions compacted are replaced, in one commit per table (Iceberg)
or per partition (Delta, whose writer holds every partition it writes in memory until the
commit). Then the table's history is expired: versions older than the retention, and the data
files only they read.

When a tombstone can go: a tombstone stops a change file that arrives after the delete from
bringing its key back. Once no such file can arrive, it has done its work. A file that can
still arrive is one the table has not taken: so a tombstone can go when every change file the
capture's record vouches for with a commit before the delete, and every full-load file, has
been applied to the table; and (for files still on their way to a copy of the capture, which
the record vouches for before they are there) when the delete is older than a grace period.
Files delivered again after they were applied are skipped by the record of files taken.

Commits: the replacement records every file taken so far (TAKEN_KEY), so the expiry of older
commits cannot make the table forget them. It is made against the version the maintenance
planned from, and a commit of an apply meanwhile makes it plan the table again (the apply
wins); a kill leaves the tables already done compacted, and the rest as they were."""

import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pyarrow as pa

from core.capture.reader import open_capture
from core.capture.target import CHANGE_SEQUENCE_COLUMN, change_range
from core.errors import CommitConflict, LakeError, ProjectError
from core.lake.apply import REPLANS
from core.lake.layout import DELETED, lake_schema
from core.lake.warehouse import Warehouse, open_stores, open_warehouse
from core.storage import Location
from core.storage.scratch import ScratchDuckDB, s3_of

LSN_DIGITS = 20  # a change sequence is the commit LSN (20 digits), then the change's position


@dataclass
class TableMaintained:
    partitions: int = 0  # replaced
    files_before: int = 0
    files_after: int = 0
    rows_before: int = 0  # stored versions, in the partitions replaced
    rows_after: int = 0
    tombstones_dropped: int = 0
    files_expired: int = 0
    tombstones_kept_because: str | None = None


def tombstone_bound(built: Warehouse, taken: dict[str, set[str]]) -> dict[str, int | str]:
    """Per table, the commit LSN below which its tombstones can go (see above), or why none
    can."""
    if built.source is None:
        return dict.fromkeys(built.tables, "the warehouse does not record where its capture is")
    try:
        capture, tables = open_capture(built.source)
    except ProjectError as error:
        return dict.fromkeys(built.tables, f"its capture cannot be read ({error})")
    bounds: dict[str, int | str] = {}
    for name in built.tables:
        files = tables.get(name)
        pending_loads = [f for f in files.loads if f.name not in taken[name]] if files else []
        pending = [f for f in files.changes if f.name not in taken[name]] if files else []
        if pending_loads:
            bounds[name] = f"{len(pending_loads)} full-load files are not applied yet"
        elif pending:
            bounds[name] = min(change_range(f.name)[0] for f in pending)
        else:
            bounds[name] = capture.flushed_lsn + 1
    return bounds


class Compactor(ScratchDuckDB):
    def __init__(self, warehouse: Location, timestamp_column: str):
        super().__init__("lakehouse-maintain-", s3=s3_of(warehouse))
        self.timestamp_column = timestamp_column

    def newest(self, store, bucket: str, files: list[str], bound: int | None, grace) -> str:
        """A query of the partition's rows to keep: the newest version of each key, less the
        tombstones that can go."""
        schema = store.schema
        store.register_partition(self.duck, "partition_rows", bucket, files)
        self.keep = "true"
        if bound is not None:
            before = f"{bound:0{LSN_DIGITS}d}"
            self.keep = (
                f"NOT coalesce({DELETED} AND {CHANGE_SEQUENCE_COLUMN} < '{before}' AND "
                f"\"{self.timestamp_column}\" < '{grace:%Y-%m-%d %H:%M:%S.%f}', false)"
            )
        columns = ", ".join(f'"{name}"' for name in schema.names)
        self.newest_rows = (
            f"SELECT {columns} FROM partition_rows QUALIFY row_number() OVER "
            f"(PARTITION BY id ORDER BY {CHANGE_SEQUENCE_COLUMN} DESC) = 1"
        )
        return f"{self.newest_rows} AND {self.keep}"

    def counts(self) -> tuple[int, int, int]:
        """Of the partition last asked about: stored rows, rows kept, tombstones dropped."""
        stored = self.duck.execute("SELECT count(*) FROM partition_rows").fetchone()[0]
        kept, dropped = self.duck.execute(
            f"SELECT count(*) FILTER (WHERE {self.keep}), count(*) FILTER (WHERE NOT "
            f"({self.keep})) FROM ({self.newest_rows})"
        ).fetchone()
        return stored, kept, dropped


def compact_table(store, compactor: Compactor, bound, grace: datetime, done: TableMaintained):
    """Replace each partition that holds more than its newest versions, planned from the
    table's current version; CommitConflict if another writer committed meanwhile.
    Partitions are read and written one after another, so memory holds one."""
    taken, capture_id = store.taken()
    if not taken:
        return
    planned = []
    for bucket, files in sorted(store.partitions().items()):
        compactor.newest(store, bucket, files, bound, grace)
        stored, kept, dropped = compactor.counts()
        if len(files) > 1 or stored != kept:
            planned.append((bucket, files, stored, kept, dropped))
    if not planned:
        return

    def rows_of(bucket: str, files: list[str]) -> pa.RecordBatchReader:
        query = compactor.newest(store, bucket, files, bound, grace)
        return compactor.duck.execute(query).to_arrow_reader(64 * 1024)

    partitions = [
        (bucket, functools.partial(rows_of, bucket, files)) for bucket, files, *_ in planned
    ]
    store.replace_partitions(partitions, taken, capture_id)
    after = store.partitions()
    for bucket, files, stored, kept, dropped in planned:
        done.partitions += 1
        done.files_before += len(files)
        done.files_after += len(after.get(bucket, []))
        done.rows_before += stored
        done.rows_after += kept
        done.tombstones_dropped += dropped


def maintain_warehouse(
    warehouse: Location,
    *,
    retain_hours: float = 168,
    tombstone_grace_hours: float = 24,
    on_table: Callable[[str, TableMaintained], None] | None = None,
) -> dict[str, TableMaintained]:
    """Compact every table of the warehouse, drop the tombstones that can go, and expire what
    is older than `retain_hours` (see above)."""
    built = open_warehouse(warehouse)
    stores = open_stores(built.location, built.table_format)
    tables = {name: stores(name, lake_schema(t, built.target)) for name, t in built.tables.items()}
    bounds = tombstone_bound(built, {name: store.taken()[0] for name, store in tables.items()})
    # Nothing is rewritten unless every table can be rewritten exactly.
    for name, store in tables.items():
        if reason := store.rewrite_refused():
            raise LakeError(f"lakehouse_maintain changed nothing: {name}: {reason}")
    grace = datetime.now(UTC) - timedelta(hours=tombstone_grace_hours)
    compactor = Compactor(built.location, built.target.timestamp_column_name)
    report = {}
    try:
        for name, store in tables.items():
            done = TableMaintained()
            bound = bounds[name]
            if isinstance(bound, str):
                done.tombstones_kept_because = bound
                bound = None
            for attempt in range(REPLANS + 1):
                try:
                    compact_table(store, compactor, bound, grace, done)
                    done.files_expired = store.expire(retain_hours)
                    break
                except CommitConflict:
                    if attempt == REPLANS:
                        raise LakeError(
                            f"{name}: another writer committed to it {REPLANS + 1} times while "
                            "maintenance planned; run lakehouse_maintain again"
                        ) from None
            report[name] = done
            if on_table:
                on_table(name, done)
    finally:
        compactor.close()
    return report
