"""The project-local PostgreSQL server: no Docker, no system service, one folder of the project.

`python -m devstack.localdb start|stop|status|url` manages it; `run --ephemeral -- CMD` runs a
command against a throwaway server (the test suite does this) and removes it afterwards.

This module imports nothing from Django: settings read `connection_url()` before Django is set up.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import glob
import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from devstack.services import add_lifecycle, run_lifecycle

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_STATE_DIR = PROJECT_ROOT / ".localdb"
SERVER_CONFIG = PROJECT_ROOT / "postgres" / "lakehouse.conf"
DATABASE_NAME = "lakehouse_poc"
SUPERUSER = "lakehouse"
# PostgreSQL refuses to run as root; root runs it as this OS user instead.
SERVICE_USER = "postgres"

INSTALL_HINT = (
    "No PostgreSQL server binaries found (looked in $PG_BIN, PATH, /usr/lib/postgresql/*/bin and "
    "Homebrew). Install them with `apt-get install postgresql` or `brew install postgresql@16`, "
    "or run `docker compose up -d postgres` and set DATABASE_URL "
    "(see .env.example)."
)
START_HINT = "start it with `make db` (or `python -m devstack.localdb start`)"


class LocalServerError(RuntimeError):
    """A failure worth one line to the user."""


def pg_bin_candidates() -> list[str]:
    """Where to look for pg_ctl and initdb: $PG_BIN, PATH, Debian's layout, then Homebrew's."""
    candidates: list[str] = []
    if os.environ.get("PG_BIN"):
        candidates.append(os.environ["PG_BIN"])
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(str(Path(on_path).parent))

    def by_version(pattern: str) -> list[str]:
        def version(path: str) -> tuple[int, ...]:
            digits = "".join(c if c.isdigit() else " " for c in path).split()
            return tuple(int(d) for d in digits)

        return sorted(glob.glob(pattern), key=version, reverse=True)

    candidates += by_version("/usr/lib/postgresql/*/bin")
    candidates += by_version("/opt/homebrew/opt/postgresql@*/bin")
    candidates += by_version("/usr/local/opt/postgresql@*/bin")
    candidates += ["/opt/homebrew/bin", "/usr/local/bin"]
    return candidates


def find_pg_bin(candidates: list[str] | None = None) -> Path | None:
    """The first folder holding both pg_ctl and initdb."""
    for folder in pg_bin_candidates() if candidates is None else candidates:
        if (Path(folder) / "pg_ctl").exists() and (Path(folder) / "initdb").exists():
            return Path(folder)
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass(frozen=True)
class LocalServer:
    """A PostgreSQL cluster kept under `state_dir` (by default `.localdb/` in the project)."""

    state_dir: Path = DEFAULT_STATE_DIR
    # Only for throwaway servers: skipping fsync makes tests faster and loses nothing they need.
    durable: bool = True
    # Where to look for the server binaries; None: the usual places (`pg_bin_candidates`).
    pg_bin_search: tuple[str, ...] | None = None

    @property
    def connection_file(self) -> Path:
        return self.state_dir / "connection.json"

    @property
    def running_as_root(self) -> bool:
        return os.geteuid() == 0

    @functools.cached_property  # asks the OS once (a runuser probe), not on every path lookup
    def server_dir(self) -> Path:
        """The folder the server process owns: data directory and log.

        Root's server runs as `postgres`, which may not be able to reach a folder under, say, a
        private home or a `mktemp -d` clone; then the cluster lives in /var/tmp, keyed by path.
        """
        local = self.state_dir / "server"
        if not self.running_as_root or self._service_user_can_reach(self.state_dir):
            return local
        key = hashlib.sha1(str(self.state_dir).encode()).hexdigest()[:12]
        return Path("/var/tmp") / f"lakehouse-localdb-{key}"

    @property
    def data_dir(self) -> Path:
        return self.server_dir / "data"

    @property
    def log_file(self) -> Path:
        return self.server_dir / "server.log"

    def _service_user_can_reach(self, folder: Path) -> bool:
        folder.mkdir(parents=True, exist_ok=True)
        probe = subprocess.run(
            ["runuser", "-u", SERVICE_USER, "--", "test", "-x", str(folder)],
            cwd="/",
            capture_output=True,
        )
        return probe.returncode == 0

    def _run(self, args: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
        """Run a server binary, as the service user when we are root."""
        if self.running_as_root:
            args = ["runuser", "-u", SERVICE_USER, "--", *args]
        return subprocess.run(args, cwd="/", capture_output=True, text=True, **kwargs)

    def _bin(self, name: str) -> str:
        search = None if self.pg_bin_search is None else list(self.pg_bin_search)
        pg_bin = find_pg_bin(search)
        if pg_bin is None:
            raise LocalServerError(INSTALL_HINT)
        return str(pg_bin / name)

    def read_connection(self) -> dict | None:
        try:
            return json.loads(self.connection_file.read_text())
        except FileNotFoundError:
            return None

    def url(self) -> str | None:
        info = self.read_connection()
        if info is None:
            return None
        return (
            f"postgres://{info['user']}:{info['password']}@{info['host']}:{info['port']}"
            f"/{info['database']}"
        )

    def is_running(self) -> bool:
        if not (self.data_dir / "PG_VERSION").exists():
            return False
        return self._run([self._bin("pg_ctl"), "status", "-D", str(self.data_dir)]).returncode == 0

    def initialise(self) -> None:
        """initdb with a generated superuser password; idempotent."""
        if (self.data_dir / "PG_VERSION").exists():
            return
        initdb = self._bin("initdb")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.server_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self.running_as_root:
            shutil.chown(self.server_dir, SERVICE_USER, SERVICE_USER)
        password = secrets.token_urlsafe(24)
        password_file = self.server_dir / "initdb.pw"
        password_file.write_text(password + "\n")
        password_file.chmod(0o600)
        if self.running_as_root:
            shutil.chown(password_file, SERVICE_USER, SERVICE_USER)
        try:
            result = self._run(
                [
                    initdb,
                    "-D",
                    str(self.data_dir),
                    "-U",
                    SUPERUSER,
                    f"--pwfile={password_file}",
                    "--auth-host=scram-sha-256",
                    "--auth-local=peer",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-sync",
                ]
            )
        finally:
            password_file.unlink(missing_ok=True)
        if result.returncode != 0:
            raise LocalServerError(f"initdb failed: {result.stderr.strip().splitlines()[-1:]}")
        with (self.data_dir / "postgresql.conf").open("a") as conf:
            conf.write("\ninclude_if_exists = 'lakehouse.conf'\ninclude_if_exists = 'local.conf'\n")
        self._write_connection(
            {
                "host": "127.0.0.1",
                "port": free_port(),
                "user": SUPERUSER,
                "password": password,
                "database": DATABASE_NAME,
            }
        )

    def _write_connection(self, info: dict) -> None:
        self.connection_file.write_text(json.dumps(info, indent=2) + "\n")
        self.connection_file.chmod(0o600)

    def _write_server_config(self, port: int) -> None:
        """Our CDC settings (postgres/lakehouse.conf) plus what only the local server needs."""
        shutil.copyfile(SERVER_CONFIG, self.data_dir / "lakehouse.conf")
        local_lines = [
            "listen_addresses = '127.0.0.1'",
            f"port = {port}",
            "unix_socket_directories = ''",
        ]
        if not self.durable:
            local_lines += ["fsync = off", "full_page_writes = off"]
        (self.data_dir / "local.conf").write_text("\n".join(local_lines) + "\n")
        if self.running_as_root:
            for name in ("lakehouse.conf", "local.conf"):
                shutil.chown(self.data_dir / name, SERVICE_USER, SERVICE_USER)

    def start(self) -> bool:
        """Start the server (initialising it first if needed). False if it was already running."""
        self.initialise()
        if self.is_running():
            return False
        info = self.read_connection()
        assert info is not None
        if not port_is_free(info["port"]):
            info["port"] = free_port()
            self._write_connection(info)
        self._write_server_config(info["port"])
        result = self._run(
            [
                self._bin("pg_ctl"),
                "start",
                "-w",
                "-t",
                "60",
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
            ]
        )
        if result.returncode != 0:
            tail = (
                self.log_file.read_text().strip().splitlines()[-3:]
                if self.log_file.exists()
                else []
            )
            raise LocalServerError(f"PostgreSQL did not start: {' | '.join(tail) or result.stderr}")
        self._create_database(info)
        return True

    def _create_database(self, info: dict) -> None:
        import psycopg2  # a project dependency, imported late so `status` works without it

        connection = psycopg2.connect(
            host=info["host"],
            port=info["port"],
            user=info["user"],
            password=info["password"],
            dbname="postgres",
        )
        connection.autocommit = True
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [info["database"]])
                if cursor.fetchone() is None:
                    cursor.execute(f'CREATE DATABASE "{info["database"]}"')
        finally:
            connection.close()

    def stop(self) -> bool:
        """Stop the server. False if it was not running."""
        if not self.is_running():
            return False
        result = self._run(
            [self._bin("pg_ctl"), "stop", "-w", "-m", "fast", "-D", str(self.data_dir)]
        )
        if result.returncode != 0:
            raise LocalServerError(f"PostgreSQL did not stop: {result.stderr.strip()}")
        return True

    def destroy(self) -> None:
        """Stop the server and delete its data."""
        self.stop()
        shutil.rmtree(self.server_dir, ignore_errors=True)
        shutil.rmtree(self.state_dir, ignore_errors=True)

    def status(self) -> str:
        info = self.read_connection()
        if info is None:
            return f"not initialised; {START_HINT}"
        state = "running" if self.is_running() else "stopped"
        return (
            f"{state}: postgres://{info['user']}@{info['host']}:{info['port']}/{info['database']}"
            f" (data {self.data_dir}, log {self.log_file})"
        )


def local_server() -> LocalServer:
    return LocalServer(Path(os.environ.get("LOCALDB_DIR") or DEFAULT_STATE_DIR))


def connection_url() -> str | None:
    """The URL of the project-local server, if it was ever initialised."""
    return local_server().url()


def not_running_message() -> str | None:
    """One line for a user whose command failed to connect, if the local server is the reason."""
    server = local_server()
    if find_pg_bin() is None and server.read_connection() is None:
        return INSTALL_HINT
    if not server.is_running():
        return f"The project-local PostgreSQL server is not running: {START_HINT}."
    return None


@contextlib.contextmanager
def ephemeral_server() -> Iterator[str]:
    """A throwaway server in a temporary folder; yields its URL, and removes it afterwards."""
    with ephemeral_servers(1) as urls:
        yield urls[0]


@contextlib.contextmanager
def ephemeral_servers(count: int) -> Iterator[list[str]]:
    """`count` throwaway servers, each in a temporary folder of its own; yields their URLs, and
    removes them all afterwards (those that started, if one fails to)."""
    servers = []
    try:
        for _ in range(count):
            server = LocalServer(Path(tempfile.mkdtemp(prefix="lakehouse-test-db-")), durable=False)
            servers.append(server)
            server.start()
        urls = [server.url() for server in servers]
        assert None not in urls
        yield urls
    finally:
        for server in servers:
            server.destroy()


def run_command(cmd: list[str], urls: list[str]) -> int:
    """Run `cmd` with DATABASE_URL set to the first server (and DATABASE_URLS to them all, space
    separated: the test suite gives each of its workers one); a SIGTERM or SIGHUP to us is
    passed on to it, and we return once it has ended, so that a throwaway server is still
    removed (no server is left behind when CI or `timeout` stops a test run)."""
    child = subprocess.Popen(
        cmd, env={**os.environ, "DATABASE_URL": urls[0], "DATABASE_URLS": " ".join(urls)}
    )

    def forward(signum, _frame):
        child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        while True:
            try:
                return child.wait()
            except KeyboardInterrupt:  # Ctrl-C reaches the child too; wait for it to finish
                continue
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.localdb", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    add_lifecycle(commands, "the local server")
    commands.add_parser("url", help="print the DATABASE_URL of the local server")
    run = commands.add_parser("run", help="run a command with DATABASE_URL set to a server")
    run.add_argument("--ephemeral", action="store_true", help="use a throwaway server")
    run.add_argument(
        "--servers",
        type=int,
        default=1,
        metavar="N",
        help="with --ephemeral: start N throwaway servers (DATABASE_URLS lists them; default 1)",
    )
    run.add_argument("cmd", nargs=argparse.REMAINDER, help="the command, after --")
    args = parser.parse_args(argv)
    server = local_server()
    try:
        done = run_lifecycle(server, "PostgreSQL", args.command)
        if done is not None:
            return done
        if args.command == "url":
            url = server.url()
            if url is None:
                raise LocalServerError(f"the local server was never started; {START_HINT}")
            print(url)
        elif args.command == "run":
            cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
            if not cmd:
                parser.error("run needs a command after --")
            if args.ephemeral:
                with ephemeral_servers(max(1, args.servers)) as urls:
                    return run_command(cmd, urls)
            url = server.url()
            if url is None or not server.is_running():
                raise LocalServerError(f"the local server is not running; {START_HINT}")
            return run_command(cmd, [url])
    except LocalServerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
