"""A capture's record (capture.json): the slot, the S3 target's settings, the snapshot, how far
the files go, and each table's schema, so that the files can be read, and tables built from
them, without the source. Written by cdc_tail with a conditional write after each batch."""

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime

from core.capture.target import S3Target, change_range, lsn_number, lsn_text
from core.errors import CaptureError, VersionConflict
from core.source.catalog import Table
from core.storage import Location

CAPTURE_FILE = "capture.json"
HISTORY_MINUTES = 24 * 60


@dataclass
class Capture:
    """What capture.json records of a folder."""

    slot: str
    target: S3Target
    snapshot_lsn: int
    loaded_at: str  # the full-load rows' timestamp (the task's start)
    flushed_lsn: int  # every change committed up to here is in the files
    loaded: dict[str, int] = field(default_factory=dict)
    # Each table's columns as (name, PostgreSQL type) and its primary key, as at the full load:
    # enough to read the files, and to build tables from them, without the source.
    tables: dict[str, dict] = field(default_factory=dict)
    # Where the slot stood when cdc_tail last let go of it cleanly (None while it runs, and
    # after a crash). psycopg2 moves a slot on by itself over WAL that holds nothing for it,
    # so this, not flushed_lsn, tells whether someone else read the slot in between.
    released_lsn: int | None = None
    # What the pipeline page shows: the changes written per table, the commit time of the last
    # one, and per minute of commit time the changes written and how far behind the source
    # the batch that held them was written (seconds), for the last HISTORY_MINUTES.
    changed: dict[str, int] = field(default_factory=dict)
    last_commit: str | None = None
    history: list[list[int]] = field(default_factory=list)
    # The record's version as read or last written: the next write must replace exactly it
    # (on S3 a conditional PUT), so a writer that lost the capture to another cannot overwrite.
    version: str | None = field(default=None, compare=False, repr=False)

    def took(self, rows: dict[str, int], first_commit: datetime, last_commit: datetime) -> None:
        """Count a batch of changes in: per table, and in the minute of its first commit."""
        for table, count in rows.items():
            self.changed[table] = self.changed.get(table, 0) + count
        self.last_commit = last_commit.strftime("%Y-%m-%d %H:%M:%S.%f")
        minute = int(first_commit.timestamp()) // 60 * 60
        behind = max(0, round((datetime.now(UTC) - last_commit).total_seconds()))
        if self.history and self.history[-1][0] == minute:
            self.history[-1][1] += sum(rows.values())
            self.history[-1][2] = max(self.history[-1][2], behind)
        else:
            self.history.append([minute, sum(rows.values()), behind])
        self.history = [entry for entry in self.history if entry[0] > minute - HISTORY_MINUTES * 60]

    def records(self, name: str) -> bool:
        """Whether the record vouches for a file of this name: every LOAD file, and the change
        files of batches up to the recorded point (a later batch's may yet be deleted and
        written again: a cdc_tail at work, or one that died before recording it)."""
        span = change_range(name)
        return span is None or span[1] <= self.flushed_lsn

    @property
    def identity(self) -> str:
        """The capture's name, which the tables and manifests built from it record."""
        return f"{self.slot}@{lsn_text(self.snapshot_lsn)}"

    def save(self, output: Location) -> None:
        data = {
            "slot": self.slot,
            "s3_settings": self.target.s3_settings(),
            "snapshot_lsn": lsn_text(self.snapshot_lsn),
            "loaded_at": self.loaded_at,
            "flushed_lsn": lsn_text(self.flushed_lsn),
            "loaded": self.loaded,
            "tables": self.tables,
            "released_lsn": None if self.released_lsn is None else lsn_text(self.released_lsn),
            "changed": self.changed,
            "last_commit": self.last_commit,
            "history": self.history,
        }
        text = (json.dumps(data, indent=2) + "\n").encode()
        try:
            self.version = output.write_if(CAPTURE_FILE, text, self.version)
        except VersionConflict as error:
            raise CaptureError(
                f"{error}: is another cdc_tail writing into {output}? Stopping; nothing past "
                "the last recorded batch was confirmed to the slot"
            ) from None

    @classmethod
    def load(cls, output: Location) -> "Capture | None":
        found = output.read(CAPTURE_FILE)
        if found is None:
            return None
        path = output.uri(CAPTURE_FILE)
        try:
            data = json.loads(found[0])
            return cls(
                slot=data["slot"],
                target=S3Target.from_s3_settings(data["s3_settings"]),
                snapshot_lsn=lsn_number(data["snapshot_lsn"]),
                loaded_at=data["loaded_at"],
                flushed_lsn=lsn_number(data["flushed_lsn"]),
                loaded=data.get("loaded", {}),
                tables=data.get("tables", {}),
                released_lsn=lsn_number(data["released_lsn"]) if data.get("released_lsn") else None,
                changed=data.get("changed", {}),
                last_commit=data.get("last_commit"),
                history=data.get("history", []),
                version=found[1],
            )
        except (ValueError, KeyError, TypeError) as error:
            raise CaptureError(f"{path} is not a capture record ({error})") from None


def table_record(table: Table) -> dict:
    return {
        "columns": [[column.name, column.type] for column in table.columns],
        "primary_key": table.primary_key,
    }
