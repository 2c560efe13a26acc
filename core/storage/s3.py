"""A prefix of an S3 bucket as a Location: every file one PUT, records replaced by conditional
PUT, one writer at a time by a lease (lease.py)."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import pyarrow as pa

from core.errors import StorageError, VersionConflict
from core.storage.lease import S3Lease
from core.storage.location import S3_SCHEME, Location, Lock, StoredFile
from core.storage.s3_settings import S3Settings, friendly_s3_error, s3_settings

MULTIPART_ABOVE = 64 * 1024 * 1024
UPLOADS_AT_ONCE = 4


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
