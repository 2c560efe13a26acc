"""A capture applied to Delta Lake tables (delta-rs), as a careful Glue job would apply it.

Per table: the files it has not taken yet, full load first, then changes in change-sequence
order, in groups; per group the last change per key only, then one MERGE:
    WHEN MATCHED AND the source's sequence is newer THEN UPDATE (a delete: a tombstone)
    WHEN NOT MATCHED THEN INSERT
Which files a table has taken is written into the very commit of the MERGE that applied them
(commit metadata `lakehouse.files`), so a crash between the MERGE and the bookkeeping cannot
apply a file twice, and a rerun applies only what is new.

A deleted key stays as a tombstone (`_deleted` true, with the delete's sequence) rather than
being removed: S3 delivers files at least once and in no order, and a change file that arrives
after the delete of its key must not bring the key back. Readers (lakehouse_verify, the
queries) leave tombstones out. With the sequence guard, the result depends neither on the order
or repetition of deliveries nor on how the changes were split into files.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, write_deltalake
from deltalake.exceptions import TableNotFoundError

from core.lake.capture_files import (
    DELETED,
    LakeError,
    TableFiles,
    lake_schema,
    open_capture,
    read_file,
)
from core.replication.target import CHANGE_SEQUENCE_COLUMN, OP_COLUMN, S3Target, lsn_text

FILES_KEY = "lakehouse.files"
CAPTURE_KEY = "lakehouse.capture"
# Change files applied by one MERGE at most (full-load files go one by one: they are big).
FILES_PER_MERGE = 50
ICEBERG_CATALOG = "catalog.db"


@dataclass
class TableApplied:
    files: int = 0
    rows: int = 0  # rows of the files, before keeping the last change per key
    merges: int = 0


@dataclass
class ApplyResult:
    tables: dict[str, TableApplied] = field(default_factory=dict)

    @property
    def files(self) -> int:
        return sum(table.files for table in self.tables.values())


def applied_files(path: Path) -> tuple[set[str], str | None]:
    """The files a Delta table has taken, from its commits, and the capture it belongs to."""
    try:
        table = DeltaTable(str(path))
    except TableNotFoundError:
        return set(), None
    taken: set[str] = set()
    capture = None
    for commit in table.history():
        if FILES_KEY in commit:
            taken.update(json.loads(commit[FILES_KEY]))
            capture = commit.get(CAPTURE_KEY, capture)
    return taken, capture


def last_change_per_key(rows: pa.Table, schema: pa.Schema) -> pa.Table:
    """One row per id, the one with the highest change sequence, shaped as the lake table."""
    duck = duckdb.connect()
    duck.register("batch", rows)
    columns = ", ".join(f'"{name}"' for name in schema.names if name != DELETED)
    last = duck.execute(
        f'SELECT {columns}, "{OP_COLUMN}" = \'D\' AS "{DELETED}" FROM batch '
        f'QUALIFY row_number() OVER (PARTITION BY id ORDER BY "{CHANGE_SEQUENCE_COLUMN}" DESC) = 1'
    ).to_arrow_table()
    duck.close()
    return last.cast(schema)


def groups(files: TableFiles, taken: set[str]) -> list[list[Path]]:
    loads = [[path] for path in files.loads if path.name not in taken]
    changes = [path for path in files.changes if path.name not in taken]
    return loads + [
        changes[start : start + FILES_PER_MERGE]
        for start in range(0, len(changes), FILES_PER_MERGE)
    ]


def apply_table(files: TableFiles, path: Path, target: S3Target, capture_id: str) -> TableApplied:
    done = TableApplied()
    taken, owner = applied_files(path)
    if owner is not None and owner != capture_id:
        raise LakeError(
            f"{path} holds a table built from another capture ({owner}): use a new --warehouse"
        )
    schema = lake_schema(files.table, target)
    for group in groups(files, taken):
        rows = pa.concat_tables([read_file(p, files.table, target) for p in group])
        batch = last_change_per_key(rows, schema)
        commit = CommitProperties(
            custom_metadata={
                FILES_KEY: json.dumps([p.name for p in group]),
                CAPTURE_KEY: capture_id,
            }
        )
        if not (path / "_delta_log").exists():
            write_deltalake(str(path), batch, commit_properties=commit)
        else:
            (
                DeltaTable(str(path))
                .merge(
                    source=batch,
                    predicate="t.id = s.id",
                    source_alias="s",
                    target_alias="t",
                    commit_properties=commit,
                )
                .when_matched_update_all(
                    predicate=f"s.{CHANGE_SEQUENCE_COLUMN} > t.{CHANGE_SEQUENCE_COLUMN}"
                )
                .when_not_matched_insert_all()
                .execute()
            )
        done.files += len(group)
        done.rows += rows.num_rows
        done.merges += 1
    return done


def check_warehouse(warehouse: Path) -> None:
    if (warehouse / ICEBERG_CATALOG).exists():
        raise LakeError(
            f"{warehouse} holds Iceberg tables ({ICEBERG_CATALOG}): give Delta tables another "
            "--warehouse"
        )
    if warehouse.exists() and not warehouse.is_dir():
        raise LakeError(f"{warehouse} is a file, not a folder")


def apply_to_delta(
    capture_dir: Path,
    warehouse: Path,
    *,
    on_table: Callable[[str, TableApplied], None] | None = None,
) -> ApplyResult:
    """Apply what each table of the capture has not taken yet; tables at WAREHOUSE/<table>."""
    capture, tables = open_capture(capture_dir)
    check_warehouse(warehouse)
    capture_id = f"{capture.slot}@{lsn_text(capture.snapshot_lsn)}"
    result = ApplyResult()
    for name, files in tables.items():
        if not files.ordered:
            continue
        applied = apply_table(files, warehouse / name, capture.target, capture_id)
        result.tables[name] = applied
        if on_table:
            on_table(name, applied)
    return result
