"""Where cdc_tail writes a capture (a folder, or an S3 prefix): its layout, and the cleaning of
what a batch beyond the record left behind; and the fault-injection hook every part of the
writing shares. The record itself is core/capture/record.py."""

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from core.capture.target import S3Target, change_range
from core.source.catalog import SCHEMA, Table
from core.storage import PARTIAL, Location, StoredFile

LOAD_MARKER = ".full-load"  # present while a full load runs; a leftover means it was cut short


def crash_point(name: str) -> None:
    """Fault injection for the tests of each window of a batch: with CDC_TAIL_CRASH_AT=<name>
    the process dies on the spot (as with SIGKILL) the first time it gets here."""
    if os.environ.get("CDC_TAIL_CRASH_AT") == name:
        os._exit(137)


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
