"""Where captures, warehouses and manifests live: a folder on this machine, or a prefix in an S3
bucket (`s3://BUCKET/PREFIX`), behind one interface, so that every command takes either.

What each promises, and how:
- a file appears whole or not at all: on disk it is written under a temporary name, fsynced and
  renamed (and its folder fsynced); on S3 it is one PUT (a multipart upload above 64 MB), which
  S3 makes visible only once complete;
- a record can be replaced only by whoever read its current version (`write_if`): on S3 a
  conditional PUT (`If-Match` on the version read, `If-None-Match: *` for a new one), which S3
  itself enforces; on disk the writer holds the folder's lock, and the version is checked too;
- one writer at a time (`lock`): on disk an flock on a file in the folder; on S3 a lease object
  taken and renewed with conditional PUTs (see `S3Lease`).

S3 settings come from the environment (or .env): with AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID or
AWS_PROFILE set, those (the endpoint, or AWS S3 itself); otherwise the project-local store
(`python -m devstack.locals3`) if it was ever started; otherwise AWS's own credential chain.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import tempfile
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from urllib.parse import urlparse

import pyarrow as pa

from core.errors import ProjectError

S3_SCHEME = "s3://"
LOCK_FILE = ".lock"
LEASE_FILE = ".lease"
PARTIAL = ".partial"
MULTIPART_ABOVE = 64 * 1024 * 1024
UPLOADS_AT_ONCE = 4
BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


class StorageError(ProjectError):
    """A folder or bucket that cannot be used as asked: one line, nothing written."""


class StorageUnreachable(StorageError):
    """The store did not answer (down, or the network): worth a retry when following."""


class VersionConflict(StorageError):
    """A record changed since it was read: someone else writes here."""


# --- S3 settings -------------------------------------------------------------------------------


@dataclass(frozen=True)
class S3Settings:
    """How to reach S3, and where that came from (for messages)."""

    endpoint_url: str | None  # None: AWS S3 itself
    access_key_id: str
    secret_access_key: str
    session_token: str | None
    region: str
    origin: str
    # Keys from AWS's credential chain (a profile, an instance role) may be short-lived: the
    # SDK client then takes them from the chain itself, renewed as they run out (a cdc_tail
    # --follow runs for days); the engines are given a copy, good for one command.
    renewable: bool = False

    @property
    def endpoint_text(self) -> str:
        return self.endpoint_url or f"AWS S3 ({self.region})"

    @cached_property
    def client(self):
        import boto3
        from botocore.config import Config

        keys = {
            "aws_access_key_id": self.access_key_id,
            "aws_secret_access_key": self.secret_access_key,
            "aws_session_token": self.session_token,
        }
        return boto3.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            **({} if self.renewable else keys),
            config=Config(
                connect_timeout=5,
                read_timeout=60,
                retries={"max_attempts": 3, "mode": "standard"},
                # S3-compatible stores answer at a path; AWS answers either way.
                s3={"addressing_style": "path" if self.endpoint_url else "auto"},
            ),
        )

    @cached_property
    def arrow_filesystem(self):
        from pyarrow import fs

        scheme = urlparse(self.endpoint_url).scheme if self.endpoint_url else "https"
        return fs.S3FileSystem(
            access_key=self.access_key_id,
            secret_key=self.secret_access_key,
            session_token=self.session_token,
            region=self.region,
            endpoint_override=self.endpoint_url,
            scheme=scheme,
        )

    def delta_options(self) -> dict[str, str]:
        """delta-rs storage options: commits by conditional PUT (never an unsafe rename)."""
        options = {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_REGION": self.region,
            "aws_conditional_put": "etag",
        }
        if self.session_token:
            options["AWS_SESSION_TOKEN"] = self.session_token
        if self.endpoint_url:
            options["AWS_ENDPOINT_URL"] = self.endpoint_url
            options["AWS_ALLOW_HTTP"] = str(self.endpoint_url.startswith("http://")).lower()
        return options

    def iceberg_properties(self) -> dict[str, str]:
        properties = {
            "s3.access-key-id": self.access_key_id,
            "s3.secret-access-key": self.secret_access_key,
            "s3.region": self.region,
        }
        if self.session_token:
            properties["s3.session-token"] = self.session_token
        if self.endpoint_url:
            properties["s3.endpoint"] = self.endpoint_url
        return properties

    def attach_to_duckdb(self, duck) -> None:
        """Let a DuckDB connection read s3:// URLs: the httpfs extension shipped as a PyPI
        package (nothing is downloaded), and a secret with these settings."""
        import duckdb_extension_httpfs

        folder = Path(duckdb_extension_httpfs.__file__).parent / "extensions"
        extension = next(folder.glob("*/httpfs.duckdb_extension"))
        duck.execute(f"LOAD '{extension}'")
        fields = {
            "TYPE": "s3",
            "KEY_ID": self.access_key_id,
            "SECRET": self.secret_access_key,
            "REGION": self.region,
        }
        if self.session_token:
            fields["SESSION_TOKEN"] = self.session_token
        if self.endpoint_url:
            parsed = urlparse(self.endpoint_url)
            fields |= {
                "ENDPOINT": parsed.netloc,
                "USE_SSL": parsed.scheme == "https",
                "URL_STYLE": "path",
            }
        listed = ", ".join(
            f"{name} {value}" if isinstance(value, bool) else f"{name} '{sql_text(value)}'"
            for name, value in fields.items()
        )
        duck.execute(f"CREATE OR REPLACE SECRET lakehouse_s3 ({listed})")


def sql_text(value: str) -> str:
    return value.replace("'", "''")


EXPLICIT_SETTINGS = ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ACCESS_KEY_ID", "AWS_PROFILE")


KNOWN_SETTINGS: dict[S3Settings, S3Settings] = {}


def s3_settings() -> S3Settings:
    """The S3 settings in force (see the module's docstring), or one line saying what to do;
    the same settings are the same object, so every location of a command shares one client."""
    found = current_s3_settings()
    return KNOWN_SETTINGS.setdefault(found, found)


def current_s3_settings() -> S3Settings:
    from devstack.locals3 import START_HINT, local_store

    environment = os.environ
    if not any(environment.get(name) for name in EXPLICIT_SETTINGS):
        store = local_store()
        stored = store.read_settings()
        if stored is not None:
            if not store.is_running():
                raise StorageError(f"the local S3 store is not running: {START_HINT}")
            return S3Settings(
                endpoint_url=store.endpoint(),
                access_key_id=stored["access_key_id"],
                secret_access_key=stored["secret_access_key"],
                session_token=None,
                region=stored["region"],
                origin=f"the local S3 store ({store.state_dir})",
            )
    import boto3

    session = boto3.Session()
    credentials = session.get_credentials()
    if credentials is None:
        raise StorageError(
            "no S3 credentials: start the local store (`make s3`), or set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY (with AWS_ENDPOINT_URL for an S3-compatible store) in the "
            "environment or .env"
        )
    frozen = credentials.get_frozen_credentials()
    endpoint = environment.get("AWS_ENDPOINT_URL_S3") or environment.get("AWS_ENDPOINT_URL")
    return S3Settings(
        endpoint_url=endpoint or None,
        access_key_id=frozen.access_key,
        secret_access_key=frozen.secret_key,
        session_token=frozen.token,
        region=session.region_name or "us-east-1",
        origin="the AWS_* settings of the environment" if endpoint else "AWS's credential chain",
        renewable=credentials.method not in ("env", "explicit"),
    )


def friendly_s3_error(error: Exception, settings: S3Settings, what: str) -> StorageError:
    """A boto3 failure as one line that says what to do."""
    import botocore.exceptions

    if isinstance(
        error,
        botocore.exceptions.EndpointConnectionError
        | botocore.exceptions.ConnectionClosedError
        | botocore.exceptions.ReadTimeoutError
        | ConnectionError,
    ):
        return StorageUnreachable(
            f"cannot reach S3 at {settings.endpoint_text} (settings from {settings.origin}): "
            "is the store running? (`make s3` starts the local one)"
        )
    if isinstance(error, botocore.exceptions.ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        if code in ("NoSuchBucket", "404"):  # a HEAD's answer has no body, so no code
            return StorageError(
                f"{what}: the bucket does not exist at {settings.endpoint_text}: create it "
                "(`aws s3 mb`), or check the URL"
            )
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403"):
            return StorageError(
                f"{what}: S3 refused the credentials from {settings.origin} ({code}): check "
                "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            )
        message = error.response.get("Error", {}).get("Message", "") or str(error)
        return StorageError(f"{what}: S3 answered {code or 'an error'} ({message})")
    if isinstance(error, botocore.exceptions.BotoCoreError):
        return StorageError(f"{what}: {error}")
    raise error


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


class S3Location(Location):
    def __init__(self, bucket: str, prefix: str, settings: S3Settings | None = None):
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.url = f"{S3_SCHEME}{bucket}/{self.prefix}" if self.prefix else f"{S3_SCHEME}{bucket}"
        self._settings = settings

    @property
    def settings(self) -> S3Settings:
        if self._settings is None:
            self._settings = s3_settings()
        return self._settings

    @property
    def is_local(self) -> bool:
        return False

    def key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def child(self, key: str) -> S3Location:
        return S3Location(self.bucket, self.key(key.strip("/")), self._settings)

    def uri(self, key: str = "") -> str:
        return f"{S3_SCHEME}{self.bucket}/{self.key(key)}" if key else self.url

    def call(self, what: str, operation: str, **arguments):
        """One S3 request; a failure the user can fix is one line."""
        import botocore.exceptions

        try:
            return getattr(self.settings.client, operation)(Bucket=self.bucket, **arguments)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as error:
            if precondition_failed(error):
                raise
            raise friendly_s3_error(error, self.settings, what) from None

    def check(self) -> None:
        self.call(self.url, "head_bucket")

    def files(self, under: str = "") -> list[StoredFile]:
        prefix = self.key(under.strip("/")) if under else self.prefix
        prefix = prefix + "/" if prefix else ""
        found, token = [], None
        while True:
            page = self.call(
                self.url,
                "list_objects_v2",
                Prefix=prefix,
                **({"ContinuationToken": token} if token else {}),
            )
            cut = len(self.prefix) + 1 if self.prefix else 0
            found += [
                StoredFile(self, item["Key"][cut:], item["Size"])
                for item in page.get("Contents", [])
                if not item["Key"].endswith("/")
            ]
            token = page.get("NextContinuationToken")
            if not token:
                return sorted(found, key=lambda file: file.key)

    def read(self, key: str) -> tuple[bytes, str] | None:
        import botocore.exceptions

        try:
            answer = self.settings.client.get_object(Bucket=self.bucket, Key=self.key(key))
        except botocore.exceptions.ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise friendly_s3_error(error, self.settings, self.uri(key)) from None
        except botocore.exceptions.BotoCoreError as error:
            raise friendly_s3_error(error, self.settings, self.uri(key)) from None
        return answer["Body"].read(), answer["ETag"]

    def write(self, key: str, data: bytes) -> None:
        self.call(self.uri(key), "put_object", Key=self.key(key), Body=data)

    def write_if(self, key: str, data: bytes, version: str | None) -> str:
        condition = {"IfNoneMatch": "*"} if version is None else {"IfMatch": version}
        try:
            answer = self.call(
                self.uri(key), "put_object", Key=self.key(key), Body=data, **condition
            )
        except Exception as error:
            if precondition_failed(error):
                raise VersionConflict(
                    f"{self.uri(key)} was changed by another writer since it was read"
                ) from None
            raise
        return answer["ETag"]

    def delete(self, keys: list[str]) -> None:
        for start in range(0, len(keys), 1000):
            batch = [{"Key": self.key(key)} for key in keys[start : start + 1000]]
            answer = self.call(self.url, "delete_objects", Delete={"Objects": batch, "Quiet": True})
            if answer.get("Errors"):
                failed = answer["Errors"][0]
                raise StorageError(
                    f"could not delete s3://{self.bucket}/{failed['Key']}: {failed['Message']}"
                )

    def publish(self, spooled: Path, key: str) -> None:
        from boto3.s3.transfer import TransferConfig

        transfer = TransferConfig(
            multipart_threshold=MULTIPART_ABOVE, multipart_chunksize=MULTIPART_ABOVE
        )
        import boto3.exceptions
        import botocore.exceptions

        try:
            self.settings.client.upload_file(
                str(spooled), self.bucket, self.key(key), Config=transfer
            )
        except boto3.exceptions.S3UploadFailedError as error:
            cause = error.__context__
            if isinstance(
                cause, botocore.exceptions.ClientError | botocore.exceptions.BotoCoreError
            ):
                raise friendly_s3_error(cause, self.settings, self.uri(key)) from None
            raise StorageError(f"{self.uri(key)}: upload failed ({error})") from None
        except botocore.exceptions.BotoCoreError as error:
            raise friendly_s3_error(error, self.settings, self.uri(key)) from None
        spooled.unlink()

    def publish_all(self, files: dict[str, Path]) -> Iterator[str]:
        # Uploads side by side: the store takes several at once faster than one after another.
        with ThreadPoolExecutor(UPLOADS_AT_ONCE) as pool:
            uploads = {
                pool.submit(self.publish, spooled, key): key for key, spooled in files.items()
            }
            for done in as_completed(uploads):
                done.result()
                yield uploads[done]

    def settle(self, keys: list[str]) -> None:
        pass  # an object is durable once its PUT has answered

    def open_input(self, key: str) -> pa.NativeFile:
        return self.settings.arrow_filesystem.open_input_file(f"{self.bucket}/{self.key(key)}")

    @contextlib.contextmanager
    def spooling(self) -> Iterator[Path]:
        with tempfile.TemporaryDirectory(prefix="lakehouse-spool-") as folder:
            yield Path(folder)

    def lock(self, what: str) -> Lock:
        return S3Lease(self, what)

    def abort_uploads(self) -> int:
        """Abort multipart uploads left under the location by a process that died mid-upload
        (never visible as objects, but kept and billed until aborted)."""
        prefix = self.prefix + "/" if self.prefix else ""
        answer = self.call(self.url, "list_multipart_uploads", Prefix=prefix)
        uploads = answer.get("Uploads", [])
        for upload in uploads:
            self.call(
                self.url, "abort_multipart_upload", Key=upload["Key"], UploadId=upload["UploadId"]
            )
        return len(uploads)


def precondition_failed(error: BaseException) -> bool:
    import botocore.exceptions

    if not isinstance(error, botocore.exceptions.ClientError):
        return False
    answer = error.response
    return (
        answer.get("Error", {}).get("Code") in ("PreconditionFailed", "ConditionalRequestConflict")
        or answer.get("ResponseMetadata", {}).get("HTTPStatusCode") == 412
    )


class S3Lease(Lock):
    """One writer per S3 location, enforced by S3: a lease object taken with a conditional PUT
    (`If-None-Match: *`) and renewed with `If-Match` on its last version, before it runs out.
    A lease that ran out, or whose holder was a process of this machine that has died, may be
    taken over (again with `If-Match`, so two newcomers cannot both win). Whoever loses its
    lease learns so at its next renewal, and stops."""

    TTL = 30.0  # seconds a lease lasts without renewal
    RENEW_AFTER = 10.0

    def __init__(self, location: S3Location, what: str):
        self.location = location
        self.what = what
        self.owner = uuid.uuid4().hex
        self.version: str | None = None
        self.renewed = 0.0
        self.version = self._take()

    def _record(self) -> bytes:
        return json.dumps(
            {
                "owner": self.owner,
                "holder": self.what,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "expires": time.time() + self.TTL,
            }
        ).encode()

    def _take(self) -> str:
        location = self.location
        try:
            version = location.write_if(LEASE_FILE, self._record(), None)
        except VersionConflict:
            found = location.read_json(LEASE_FILE)
            if found is None:  # released meanwhile: try once more
                version = location.write_if(LEASE_FILE, self._record(), None)
            else:
                holder, held = found
                if not self._can_take_over(holder):
                    until = time.strftime("%H:%M:%S", time.localtime(holder["expires"]))
                    raise StorageError(
                        f"another {holder.get('holder', 'process')} (pid {holder.get('pid')} on "
                        f"{holder.get('host')}) is writing into {location.url}: one at a time "
                        f"(its lease runs until {until} unless renewed)"
                    ) from None
                try:
                    version = location.write_if(LEASE_FILE, self._record(), held)
                except VersionConflict:
                    raise StorageError(
                        f"another process took {location.url} at the same moment: one at a time"
                    ) from None
        self.renewed = time.monotonic()
        return version

    @staticmethod
    def _can_take_over(holder: dict) -> bool:
        if holder.get("expires", 0) < time.time():
            return True
        if holder.get("host") != socket.gethostname():
            return False
        pid = holder.get("pid")
        return not isinstance(pid, int) or not Path(f"/proc/{pid}").exists()

    def keep(self) -> None:
        if time.monotonic() - self.renewed < self.RENEW_AFTER:
            return
        try:
            self.version = self.location.write_if(LEASE_FILE, self._record(), self.version)
        except VersionConflict:
            raise StorageError(
                f"lost the lease on {self.location.url} to another process: stopping (nothing "
                "past the last recorded batch counts)"
            ) from None
        self.renewed = time.monotonic()

    def release(self) -> None:
        found = self.location.read_json(LEASE_FILE)
        if found is not None and found[0].get("owner") == self.owner:
            self.location.delete([LEASE_FILE])


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
