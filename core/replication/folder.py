"""A capture folder: its record (capture.json), its layout, its lock, and the cleaning of what a
batch beyond the record left behind. Also the error type and fault-injection hook every part of
the capture shares."""

import fcntl
import json
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from core.replication import SCHEMA
from core.replication.files import PARTIAL, fsync_folder
from core.replication.schema import Table
from core.replication.target import S3Target, change_range, lsn_number, lsn_text

CAPTURE_FILE = "capture.json"
LOCK_FILE = ".lock"
LOAD_MARKER = ".full-load"  # present while a full load runs; a leftover means it was cut short


class CaptureError(Exception):
    """One line for the user: what is wrong and what to do."""


def crash_point(name: str) -> None:
    """Fault injection for the tests of each window of a batch: with CDC_TAIL_CRASH_AT=<name>
    the process dies on the spot (as with SIGKILL) the first time it gets here."""
    if os.environ.get("CDC_TAIL_CRASH_AT") == name:
        os._exit(137)


def write_durably(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + PARTIAL)
    with partial.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    partial.rename(path)
    fsync_folder(path.parent)


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

    @property
    def identity(self) -> str:
        """The capture's name, which the tables and manifests built from it record."""
        return f"{self.slot}@{lsn_text(self.snapshot_lsn)}"

    def save(self, output: Path) -> None:
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
        write_durably(output / CAPTURE_FILE, (json.dumps(data, indent=2) + "\n").encode())

    @classmethod
    def load(cls, output: Path) -> "Capture | None":
        path = output / CAPTURE_FILE
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text())
            return cls(
                slot=data["slot"],
                target=S3Target.from_s3_settings(data["s3_settings"]),
                snapshot_lsn=lsn_number(data["snapshot_lsn"]),
                loaded_at=data["loaded_at"],
                flushed_lsn=lsn_number(data["flushed_lsn"]),
                loaded=data.get("loaded", {}),
                tables=data.get("tables", {}),
                released_lsn=lsn_number(data["released_lsn"]) if data.get("released_lsn") else None,
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
    output: Path
    target: S3Target
    tables: dict[str, Table]

    def folder(self, table: str, moment: datetime) -> Path:
        return self.output / SCHEMA / table / self.target.partition(moment)

    def capture_files(self) -> list[Path]:
        base = self.output / SCHEMA
        return [path for path in base.rglob("*") if path.is_file()] if base.exists() else []


def lock_folder(output: Path):
    """An exclusive lock on the folder for as long as this process lives."""
    output.mkdir(parents=True, exist_ok=True)
    handle = (output / LOCK_FILE).open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise CaptureError(
            f"another cdc_tail is writing into {output}: one process per folder"
        ) from None
    return handle


def remove_unconfirmed(layout: Layout, flushed_lsn: int) -> int:
    """Delete what a batch beyond the confirmed point left behind (its files are written again,
    under the same names): temporary files, and change files ending after `flushed_lsn`."""
    removed = 0
    for path in layout.capture_files():
        span = change_range(path.name)
        if path.name.endswith(PARTIAL) or (span is not None and span[1] > flushed_lsn):
            path.unlink()
            removed += 1
    return removed
