"""What a user types for a place: a folder, or `s3://BUCKET[/PREFIX]`, as a Location."""

from __future__ import annotations

import re
from pathlib import Path

from core.errors import StorageError
from core.storage.local import LocalLocation
from core.storage.location import S3_SCHEME, Location
from core.storage.s3 import S3Location

BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def location(text: str | Path | Location) -> Location:
    """A folder, or `s3://BUCKET[/PREFIX]`; a malformed URL is one line."""
    if isinstance(text, Location):
        return text
    if isinstance(text, Path):
        return LocalLocation(text)
    if "://" not in text:
        return LocalLocation(Path(text))
    if not text.startswith(S3_SCHEME):
        raise StorageError(f"{text}: give a folder, or an s3://BUCKET/PREFIX URL")
    bucket, _, prefix = text[len(S3_SCHEME) :].partition("/")
    if not BUCKET_NAME.fullmatch(bucket) or ".." in bucket:
        raise StorageError(f"{text}: {bucket!r} is not a valid bucket name")
    if "//" in prefix.rstrip("/"):
        raise StorageError(f"{text}: an empty folder name (//) in the prefix")
    return S3Location(bucket, prefix)


def file_at(text: str | Path) -> tuple[Location, str]:
    """A file's location and name: `dir/manifest.json`, `s3://bucket/cdc/manifest.json`."""
    text = str(text)
    folder, _, name = text.rstrip("/").rpartition("/")
    if not name or text.endswith("/"):
        raise StorageError(f"{text}: give a file, not a folder")
    return location(folder or "."), name
