"""The project-local server: start, stop, status, idempotence, and the errors users see."""

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import psycopg2
import pytest

from devstack.localdb import INSTALL_HINT, LocalServer, LocalServerError, ephemeral_server

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def server(tmp_path):
    server = LocalServer(tmp_path / "localdb", durable=False)
    yield server
    server.destroy()


def query(url: str, sql: str):
    with psycopg2.connect(url) as connection, connection.cursor() as cursor:
        cursor.execute(sql)
        value = cursor.fetchone()[0]
    connection.close()
    return value


def test_start_initialises_a_logical_wal_server_on_loopback(server):
    assert server.start() is True
    url = server.url()
    assert url.startswith("postgres://lakehouse:")
    assert "@127.0.0.1:" in url
    assert query(url, "SHOW wal_level") == "logical"
    assert int(query(url, "SHOW max_replication_slots")) >= 4
    assert int(query(url, "SHOW max_wal_senders")) >= 4
    assert query(url, "SHOW listen_addresses") == "127.0.0.1"
    assert query(url, "SELECT current_database()") == "lakehouse_poc"


def test_second_start_is_a_no_op_and_stop_stops(server):
    server.start()
    port = server.read_connection()["port"]
    assert server.start() is False
    assert server.is_running()
    assert "running" in server.status()
    assert server.stop() is True
    assert not server.is_running()
    assert server.status().startswith("stopped")
    assert server.stop() is False
    assert server.start() is True  # restarts with its data and, the port being free, its port
    assert server.read_connection()["port"] == port


def test_a_busy_port_moves_the_server_to_a_free_one(server):
    server.start()
    server.stop()
    port = server.read_connection()["port"]
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        server.start()
    assert server.read_connection()["port"] != port
    assert query(server.url(), "SELECT 1") == 1


def test_data_lives_in_the_state_folder_unless_the_server_user_cannot_reach_it(server):
    if os.geteuid() == 0:
        # pytest's tmp_path is private to root, so the postgres user cannot enter it.
        assert str(server.data_dir).startswith("/var/tmp/lakehouse-localdb-")
    else:
        assert server.data_dir.is_relative_to(server.state_dir)
    server.start()
    assert (server.data_dir / "PG_VERSION").exists()
    assert server.connection_file.is_relative_to(server.state_dir)


def test_missing_binaries_say_how_to_install_them(tmp_path):
    server = LocalServer(tmp_path / "nowhere", pg_bin_search=(str(tmp_path),))
    with pytest.raises(LocalServerError) as error:
        server.start()
    assert str(error.value) == INSTALL_HINT
    assert "apt-get install postgresql" in INSTALL_HINT
    assert "brew install" in INSTALL_HINT
    assert "docker compose" in INSTALL_HINT


def test_ephemeral_server_leaves_nothing_behind():
    with ephemeral_server() as url:
        assert query(url, "SHOW wal_level") == "logical"
        port = int(url.rsplit(":", 1)[1].split("/")[0])
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0


def test_manage_py_says_in_one_line_how_to_start_a_stopped_server(server):
    server.start()
    server.stop()
    environment = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    environment.update(
        LOCALDB_DIR=str(server.state_dir), SECRET_KEY="k" * 50, DJANGO_ENV_FILE="/nonexistent"
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "migrate"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: The project-local PostgreSQL server is not running: start it with `make db` "
        "(or `python -m devstack.localdb start`)."
    ]


def test_cli_status_exit_code_tells_whether_it_runs(server):
    environment = {**os.environ, "LOCALDB_DIR": str(server.state_dir)}
    cli = [sys.executable, "-m", "devstack.localdb"]
    stopped = subprocess.run([*cli, "status"], env=environment, capture_output=True, text=True)
    assert stopped.returncode == 3
    assert "not initialised" in stopped.stdout
    started = subprocess.run([*cli, "start"], env=environment, capture_output=True, text=True)
    assert started.returncode == 0, started.stderr
    assert "started in" in started.stdout
    again = subprocess.run([*cli, "start"], env=environment, capture_output=True, text=True)
    assert "already running" in again.stdout
    running = subprocess.run([*cli, "status"], env=environment, capture_output=True, text=True)
    assert running.returncode == 0


def test_a_terminated_run_still_removes_its_throwaway_server(tmp_path):
    marker = tmp_path / "url"
    script = (
        "import os, pathlib, time; "
        f"pathlib.Path({str(marker)!r}).write_text(os.environ['DATABASE_URL']); time.sleep(60)"
    )
    run = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devstack.localdb",
            "run",
            "--ephemeral",
            "--",
            sys.executable,
            "-c",
            script,
        ],
        cwd=ROOT,
    )
    for _ in range(300):
        if marker.exists() and marker.read_text():
            break
        time.sleep(0.1)
    port = int(marker.read_text().rsplit(":", 1)[1].split("/")[0])
    run.terminate()
    assert run.wait(timeout=60) != 0
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
