"""Where captures, warehouses and manifests live: a folder on this machine, or a prefix in an S3
bucket (`s3://BUCKET/PREFIX`), behind one interface (`Location`), so that every command takes
either (local.py and s3.py hold the two).

What each promises, and how:
- a file appears whole or not at all: on disk it is written under a temporary name, fsynced and
  renamed (and its folder fsynced); on S3 it is one PUT (a multipart upload above 64 MB), which
  S3 makes visible only once complete;
- a record can be replaced only by whoever read its current version (`write_if`): on S3 a
  conditional PUT (`If-Match` on the version read, `If-None-Match: *` for a new one), which S3
  itself enforces; on disk the writer holds the folder's lock, and the version is checked too;
- one writer at a time (`lock`): on disk an flock on a file in the folder; on S3 a lease object
  taken and renewed with conditional PUTs (see lease.py).
"""

from __future__ import annotations

import contextlib
import json
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

S3_SCHEME = "s3://"


# --- locations -------------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredFile:
    """A file of a location, by its key ('/'-separated, relative to the location)."""

    location: Location
    key: str
    size: int

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]

    @property
    def uri(self) -> str:
        """As engines (DuckDB, delta-rs) name it: a path, or an s3:// URL."""
        return self.location.uri(self.key)

    def open(self) -> pa.NativeFile:
        return self.location.open_input(self.key)

    def __str__(self) -> str:
        return self.uri


class Location(ABC):
    """A folder on disk or a prefix in a bucket."""

    url: str

    def __str__(self) -> str:
        return self.url

    @property
    @abstractmethod
    def is_local(self) -> bool: ...

    @abstractmethod
    def child(self, key: str) -> Location:
        """The location at `key` under this one."""

    @abstractmethod
    def uri(self, key: str = "") -> str:
        """A path on disk, or s3://BUCKET/KEY: what engines are given."""

    @abstractmethod
    def check(self) -> None:
        """Raise a StorageError if the location cannot be reached (a bucket missing, the store
        down, credentials refused)."""

    @abstractmethod
    def files(self, under: str = "") -> list[StoredFile]:
        """Every file below `under`, at any depth, in key order."""

    @abstractmethod
    def read(self, key: str) -> tuple[bytes, str] | None:
        """A file's bytes and version, or None if there is no such file."""

    @abstractmethod
    def write(self, key: str, data: bytes) -> None:
        """Write a file whole (replacing any), durably."""

    @abstractmethod
    def write_if(self, key: str, data: bytes, version: str | None) -> str:
        """Write a file only if its version is still `version` (None: only if it does not
        exist); returns the new version, or raises VersionConflict."""

    @abstractmethod
    def delete(self, keys: list[str]) -> None: ...

    @abstractmethod
    def publish(self, spooled: Path, key: str) -> None:
        """Give a finished local file (written into `spooling()`'s folder) its place at `key`,
        whole or not at all; the local file is gone afterwards."""

    def publish_all(self, files: dict[str, Path]) -> Iterator[str]:
        """Publish each spooled file at its key (in no set order); yields each key as it is
        done."""
        for key, spooled in files.items():
            self.publish(spooled, key)
            yield key

    @abstractmethod
    def settle(self, keys: list[str]) -> None:
        """Make what `publish` did durable (on disk: fsync the folders)."""

    @abstractmethod
    def open_input(self, key: str) -> pa.NativeFile:
        """A file for reading, with random access."""

    @abstractmethod
    def spooling(self) -> contextlib.AbstractContextManager[Path]:
        """A local folder for files being written, before `publish`."""

    @abstractmethod
    def lock(self, what: str) -> Lock:
        """Exclusive use of the location by this process (`what` names the holder in errors)."""

    def exists(self, key: str) -> bool:
        return self.read(key) is not None

    def same_as(self, other: Location) -> bool:
        if self.is_local and other.is_local:
            return self.path.resolve() == other.path.resolve()
        return self.uri() == other.uri()

    def read_json(self, key: str) -> tuple[dict, str] | None:
        found = self.read(key)
        if found is None:
            return None
        return json.loads(found[0]), found[1]


class Lock(ABC):
    @abstractmethod
    def keep(self) -> None:
        """Still ours? (renewed when due; raises StorageError if it was lost)"""

    @abstractmethod
    def release(self) -> None: ...
