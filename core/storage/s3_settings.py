"""How to reach S3, and where that came from. Settings come from the environment (or .env): with
AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID or AWS_PROFILE set, those (the endpoint, or AWS S3
itself); otherwise the project-local store that Django's settings give (LOCAL_S3_STORE: the
one `make s3` runs), if it was ever started; otherwise AWS's own credential chain."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Protocol
from urllib.parse import urlparse

from core.errors import StorageError, StorageUnreachable


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


class LocalStore(Protocol):
    """A project-local S3 store, as the settings give it: its settings once it was first
    started (endpoint ports, keys, region), whether it runs, and how to start it."""

    state_dir: Path
    start_hint: str

    def read_settings(self) -> dict | None: ...
    def is_running(self) -> bool: ...
    def endpoint(self) -> str | None: ...


def local_store() -> LocalStore | None:
    """The local store Django's settings name (LOCAL_S3_STORE), if any."""
    from django.conf import settings

    return getattr(settings, "LOCAL_S3_STORE", None) if settings.configured else None


def current_s3_settings() -> S3Settings:
    environment = os.environ
    store = None if any(environment.get(name) for name in EXPLICIT_SETTINGS) else local_store()
    if store is not None:
        stored = store.read_settings()
        if stored is not None:
            if not store.is_running():
                raise StorageError(f"the local S3 store is not running: {store.start_hint}")
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
