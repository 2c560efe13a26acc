"""A capture location (a folder, or an S3 prefix): its record (capture.json), its layout, and
the cleaning of what a batch beyond the record left behind. Also the error type and
fault-injection hook every part of the capture shares."""

import json
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from core.errors import ProjectError
from core.replication import SCHEMA
from core.replication.schema import Table
from core.replication.target import S3Target, change_range, lsn_number, lsn_text
from core.storage import PARTIAL, Location, StoredFile, VersionConflict, location

CAPTURE_FILE = "capture.json"
LOAD_MARKER = ".full-load"  # present while a full load runs; a leftover means it was cut short


class CaptureError(ProjectError):
    """One line for the user: what is wrong and what to do."""


def crash_point(name: str) -> None:
    """Fault injection for the tests of each window of a batch: with CDC_TAIL_CRASH_AT=<name>
    the process dies on the spot (as with SIGKILL) the first time it gets here."""
    if os.environ.get("CDC_TAIL_CRASH_AT") == name:
        os._exit(137)


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
    # The record's version as read or last written: the next write must replace exactly it
    # (on S3 a conditional PUT), so a writer that lost the capture to another cannot overwrite.
    version: str | None = field(default=None, compare=False, repr=False)

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
    def load(cls, output: Location | str | Path) -> "Capture | None":
        output = location(output)
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
                version=found[1],
            )
        except (ValueError, KeyError, TypeError) as error:
            raise CaptureError(f"{path} is not a capture record ({error})") from None


def table_record(table: Table) -> dict:
    return {
        "columns": [[column.name, column.type] for column in table.columns],
        "primary_key": table.primary_key,
    }


@dataclass
class Layout:
    output: Location
    target: S3Target
    tables: dict[str, Table]
    spool: Path  # where files are written before they are published into `output`

    def key(self, table: str, moment: datetime, name: str) -> str:
        """Where a file of `table` whose date folder is that of `moment` goes."""
        folder = "/".join(part for part in (SCHEMA, table, self.target.partition(moment)) if part)
        return f"{folder}/{name}"

    def capture_files(self) -> list[StoredFile]:
        return self.output.files(SCHEMA)


def remove_unconfirmed(layout: Layout, flushed_lsn: int) -> int:
    """Delete what a batch beyond the confirmed point left behind (its files are written again,
    under the same names): temporary files, and change files ending after `flushed_lsn`."""
    stale = []
    for file in layout.capture_files():
        span = change_range(file.name)
        if file.name.endswith(PARTIAL) or (span is not None and span[1] > flushed_lsn):
            stale.append(file.key)
    layout.output.delete(stale)
    return len(stale)
