"""A folder on this machine as a Location: files renamed into place and fsynced, one writer at
a time by an flock."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa

from core.errors import StorageError, VersionConflict
from core.storage.location import Location, Lock, StoredFile

LOCK_FILE = ".lock"
PARTIAL = ".partial"


class LocalLocation(Location):
    def __init__(self, path: Path):
        self.path = path
        self.url = str(path)

    @property
    def is_local(self) -> bool:
        return True

    def child(self, key: str) -> LocalLocation:
        return LocalLocation(self.path / key)

    def uri(self, key: str = "") -> str:
        return str(self.path / key) if key else str(self.path)

    def check(self) -> None:
        if self.path.exists() and not self.path.is_dir():
            raise StorageError(f"{self.path} is a file, not a folder")

    def files(self, under: str = "") -> list[StoredFile]:
        base = self.path / under if under else self.path
        if not base.is_dir():
            return []
        found = [
            StoredFile(self, path.relative_to(self.path).as_posix(), path.stat().st_size)
            for path in base.rglob("*")
            if path.is_file()
        ]
        return sorted(found, key=lambda file: file.key)

    @staticmethod
    def _version(path: Path) -> str:
        status = path.stat()
        return f"{status.st_mtime_ns}-{status.st_size}"

    def read(self, key: str) -> tuple[bytes, str] | None:
        path = self.path / key
        try:
            return path.read_bytes(), self._version(path)
        except (FileNotFoundError, NotADirectoryError):
            return None

    def write(self, key: str, data: bytes) -> None:
        path = self.path / key
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(path.name + PARTIAL)
        with partial.open("wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        partial.rename(path)
        fsync_folder(path.parent)

    def write_if(self, key: str, data: bytes, version: str | None) -> str:
        # Writers of a record hold the folder's lock: the check cannot race another writer.
        path = self.path / key
        current = self._version(path) if path.exists() else None
        if current != version:
            raise VersionConflict(f"{path} was changed by another writer since it was read")
        self.write(key, data)
        return self._version(path)

    def delete(self, keys: list[str]) -> None:
        for key in keys:
            (self.path / key).unlink(missing_ok=True)

    def publish(self, spooled: Path, key: str) -> None:
        path = self.path / key
        path.parent.mkdir(parents=True, exist_ok=True)
        spooled.rename(path)

    def settle(self, keys: list[str]) -> None:
        for folder in sorted({(self.path / key).parent for key in keys}):
            fsync_folder(folder)

    def open_input(self, key: str) -> pa.NativeFile:
        return pa.OSFile(str(self.path / key), "rb")

    @contextlib.contextmanager
    def spooling(self) -> Iterator[Path]:
        # In the folder itself: a rename, not a copy, gives the file its place.
        spool = self.path / ".staging"
        spool.mkdir(parents=True, exist_ok=True)
        yield spool

    def lock(self, what: str) -> Lock:
        return FolderLock(self.path, what)


def fsync_folder(folder: Path) -> None:
    """Make the renames in `folder` durable: a file is not safely named until its folder is."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class FolderLock(Lock):
    """An flock on LOCK_FILE in the folder, held for as long as this process lives."""

    def __init__(self, folder: Path, what: str):
        import fcntl

        folder.mkdir(parents=True, exist_ok=True)
        self.handle = (folder / LOCK_FILE).open("a+")
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.handle.close()
            raise StorageError(f"another {what} is writing into {folder}: one at a time") from None

    def keep(self) -> None:
        pass

    def release(self) -> None:
        self.handle.close()
