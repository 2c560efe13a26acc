"""A DuckDB of our own for reading captures and tables, on disk or S3, within a memory limit."""

import tempfile
from pathlib import Path

import duckdb

from core.storage.location import Location
from core.storage.s3_settings import S3Settings

DUCKDB_MEMORY = "128MB"


class ScratchDuckDB:
    """A DuckDB in a temporary folder, bounded in memory: what does not fit goes to disk (a
    database file, not :memory:, so that its tables can too), and able to read s3:// URLs with
    `s3` settings. Removed by close()."""

    def __init__(self, prefix: str, s3: S3Settings | None = None):
        self.scratch = tempfile.TemporaryDirectory(prefix=prefix)
        self.duck = duckdb.connect(str(Path(self.scratch.name) / "scratch.duckdb"))
        self.duck.execute(f"SET memory_limit = '{DUCKDB_MEMORY}'")
        self.duck.execute(f"SET temp_directory = '{self.scratch.name}'")
        self.duck.execute("SET preserve_insertion_order = false")
        self.duck.execute("SET threads = 1")  # each thread has its own read buffers
        self.duck.execute("SET TimeZone = 'UTC'")
        if s3 is not None:
            s3.attach_to_duckdb(self.duck)

    def close(self) -> None:
        self.duck.close()
        self.scratch.cleanup()


def s3_of(location: Location) -> S3Settings | None:
    return None if location.is_local else location.settings
