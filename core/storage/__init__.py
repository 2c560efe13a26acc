"""Where captures, warehouses and manifests live: a folder on this machine or a prefix in an S3
bucket, behind one interface (location.py holds it, and what each promises); a DuckDB that
reads either (scratch.py); and the registry of the places written (registry.py)."""

from core.storage.local import PARTIAL, LocalLocation
from core.storage.location import S3_SCHEME, Location, Lock, StoredFile
from core.storage.parsing import file_at, location
from core.storage.s3 import S3Location
from core.storage.s3_settings import S3Settings, s3_settings

__all__ = [
    "PARTIAL",
    "S3_SCHEME",
    "LocalLocation",
    "Location",
    "Lock",
    "S3Location",
    "S3Settings",
    "StoredFile",
    "file_at",
    "location",
    "s3_settings",
]
