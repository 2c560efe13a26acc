"""One lakehouse table in one format (delta.py, iceberg.py), as the apply and maintenance use
it, and the errors they raise."""

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import pyarrow as pa


class TableFormat(StrEnum):
    """The table formats a warehouse holds."""

    DELTA = "delta"
    ICEBERG = "iceberg"


@dataclass(frozen=True)
class TableStatus:
    """A table at a glance (the pipeline page): its version, the rows its data files hold
    (every version and tombstone), and the last capture file a commit recorded."""

    version: str  # a Delta version, or an Iceberg snapshot id
    rows: int | None
    last_file: str | None


# Partitions to replace, each with a function giving its new rows (maintain.py).
NewPartitions = list[tuple[str, Callable[[], pa.RecordBatchReader]]]


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

    def foreign_features(self) -> list[str]:
        """What another writer gave the table that its data files alone do not show (deletion
        vectors, delete files, column mapping, partitions not ours), by name: such a table is
        read through its format's library, and maintenance, which rewrites data files, leaves
        it alone. [] for a table only we wrote."""

    def partitions(self) -> dict[str, list[str]]:
        """Each partition's data files, as of the version planned from."""

    def rewrite_refused(self) -> str | None:
        """Why maintenance cannot rewrite this table's partitions exactly (column mapping it
        does not write, say), or None; one line raised for what it cannot even read."""

    def register_partition(self, duck, name: str, bucket: str, files: list[str]) -> None:
        """One partition's stored versions (`files`, its data files) in DuckDB as `name`,
        with what other writers deleted (deletion vectors, delete files) left out."""

    def replace_partitions(self, partitions: NewPartitions, taken: set[str], capture: str) -> None:
        """Those partitions' files replaced by their new rows, the commits recording every
        file taken (TAKEN_KEY); CommitConflict if the table moved since it was planned from."""

    def expire(self, hours: float) -> int:
        """History older than `hours` expired, with the data files only it read; how many."""

    def status(self) -> TableStatus | None:
        """The table at a glance, or None if it does not exist yet."""
