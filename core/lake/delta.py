"""Delta Lake tables (delta-rs) at WAREHOUSE/<table>: the MERGE with the sequence guard, and
the files applied kept in each commit's metadata."""

import json
from pathlib import Path

import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, write_deltalake
from deltalake.exceptions import TableNotFoundError

from core.lake.apply import CAPTURE_KEY, FILES_KEY
from core.replication.target import CHANGE_SEQUENCE_COLUMN


class DeltaStore:
    def __init__(self, path: Path):
        self.path = path

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

    def merge(self, batch: pa.Table, files: list[str], capture_id: str) -> None:
        commit = CommitProperties(
            custom_metadata={FILES_KEY: json.dumps(files), CAPTURE_KEY: capture_id}
        )
        if not (self.path / "_delta_log").exists():
            write_deltalake(str(self.path), batch, commit_properties=commit)
            return
        (
            DeltaTable(str(self.path))
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

    def dataset(self):
        """The table for reading (a pyarrow dataset: DuckDB scans it without loading it)."""
        return DeltaTable(str(self.path)).to_pyarrow_dataset()

    def register(self, duck, name: str) -> None:
        """Make the table (tombstones included) readable in DuckDB as `name`."""
        duck.register(name, self.dataset())
