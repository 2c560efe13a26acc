"""A Trino server for the tests (Athena engine v3 is Trino): the one `make engines` installs,
started on a free port with the catalogs given, run by Java 24 or later, stopped by its pid;
and its HTTP protocol, enough to run a statement and read the rows."""

import json
import os
import signal
import subprocess
import time
import urllib.request
import uuid
from pathlib import Path

from core.source.children import die_with_parent
from devstack import engines
from devstack.localdb import free_port

READY_SECONDS = 180
JVM_OPTIONS = [
    "-Xmx1G",
    "-XX:+UseG1GC",
    "-XX:+ExitOnOutOfMemoryError",
    "-XX:ReservedCodeCacheSize=256M",
    "-XX:+EnableDynamicAgentLoading",
    "-Djdk.attach.allowAttachSelf=true",
    "-Dfile.encoding=UTF-8",
]


class TrinoError(RuntimeError):
    pass


class TrinoServer:
    def __init__(self, folder: Path, catalogs: dict[str, dict[str, str]]):
        self.folder = folder
        self.catalogs = catalogs
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def write_settings(self) -> None:
        etc = self.folder / "etc"
        (etc / "catalog").mkdir(parents=True, exist_ok=True)
        settings = {
            "coordinator": "true",
            "node-scheduler.include-coordinator": "true",
            "http-server.http.port": str(self.port),
            "discovery.uri": self.url,
            "query.max-memory": "512MB",
            "query.max-memory-per-node": "512MB",
        }
        write_properties(etc / "config.properties", settings)
        for name, properties in self.catalogs.items():
            write_properties(etc / "catalog" / f"{name}.properties", properties)

    def start(self) -> None:
        java = engines.java_home(24)
        if java is None:
            raise TrinoError(f"Trino {engines.TRINO_VERSION} needs Java 24 or later; none found")
        home = engines.trino_home()
        if not (home / "lib").is_dir():
            raise TrinoError("Trino is not installed: run `make engines`")
        self.write_settings()
        command = [
            str(java / "bin" / "java"),
            *JVM_OPTIONS,
            "-Dnode.environment=test",
            f"-Dnode.id={uuid.uuid4()}",
            f"-Dnode.data-dir={self.folder / 'data'}",
            f"-Dconfig={self.folder / 'etc' / 'config.properties'}",
            f"-Dcatalog.config-dir={self.folder / 'etc' / 'catalog'}",
            f"-Dplugin.dir={home / 'plugin'}",
            "-cp",
            f"{home / 'lib'}/*",
            "io.trino.server.TrinoServer",
        ]
        log = (self.folder / "server.log").open("wb")
        # Stopped by its pid when the tests are done; and by the kernel if they die first.
        self.process = subprocess.Popen(
            command, cwd=self.folder, stdout=log, stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )  # fmt: skip
        deadline = time.monotonic() + READY_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise TrinoError(f"Trino stopped at start: {self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/v1/info", timeout=2) as answer:
                    if not json.load(answer).get("starting", True):
                        return
            except OSError:
                pass
            time.sleep(1)
        raise TrinoError(f"Trino did not start in {READY_SECONDS}s: {self.log_tail()}")

    def log_tail(self) -> str:
        return (self.folder / "server.log").read_text(errors="replace")[-3000:]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def query(self, sql: str, catalog: str, schema: str) -> list[list]:
        """The statement's rows; TrinoError with Trino's message if it failed."""
        request = urllib.request.Request(
            f"{self.url}/v1/statement",
            data=sql.encode(),
            headers={
                "X-Trino-User": "tests",
                "X-Trino-Catalog": catalog,
                "X-Trino-Schema": schema,
                "X-Trino-Time-Zone": "America/New_York",  # instants must not move
            },
        )
        rows: list[list] = []
        while request is not None:
            with urllib.request.urlopen(request, timeout=120) as answer:
                page = json.load(answer)
            if "error" in page:
                raise TrinoError(page["error"]["message"])
            rows += page.get("data", [])
            following = page.get("nextUri")
            request = urllib.request.Request(following) if following else None
            if request is not None and not page.get("data"):
                time.sleep(0.05)
        return rows


def write_properties(path: Path, properties: dict[str, str]) -> None:
    path.write_text("".join(f"{key}={value}\n" for key, value in properties.items()))
