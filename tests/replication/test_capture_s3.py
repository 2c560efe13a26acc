"""cdc_tail into a real S3 store (the local SeaweedFS): the same files as on disk, exactly once
through a kill at every window with new changes arriving meanwhile, without a rename or an
fsync: each file one PUT, the record (capture.json) a conditional PUT after them, one writer
per capture by a lease that S3 enforces, and one line for every S3 failure."""

import io
import json
import re
import signal
import time

import pytest
from django.core.management import CommandError, call_command

from core.capture.files import read_rows
from core.capture.reader import open_capture
from core.capture.record import Capture
from core.capture.target import S3Target, change_range
from core.errors import CaptureError, StorageError
from core.models import Product
from core.replication.connections import read_tables
from core.storage import location
from core.storage.lease import LEASE_FILE, S3Lease
from core.verify.capture import verify_capture
from devstack.localdb import free_port
from tests.replication.test_capture import (
    CRASH_POINTS,
    SLOT,
    make_changes,
    manage,
    params,
)
from tests.seeded import slot_is_read, value, wait_for

pytestmark = pytest.mark.django_db(transaction=True)
CHANGE_NAME = re.compile(r"\d{8}-\d{10}-[0-9A-F]{16}-[0-9A-F]{16}\.(parquet|csv)")


def tail(url: str, *args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("cdc_tail", "--slot", SLOT, "--output", url, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def assert_same(url: str) -> None:
    reports = verify_capture(params(), location(url))
    wrong = {name: report for name, report in reports.items() if not report.same}
    assert not wrong, wrong


def keys(url: str, under: str = "") -> list[str]:
    return [file.key for file in location(url).files(under)]


def change_rows(url: str, table: str) -> list[dict]:
    where = location(url)
    capture = Capture.load(location(where))
    schema = read_tables(params())[table]
    files = [f for f in where.files(f"public/{table}") if change_range(f.name)]
    return [row for file in files for row in read_rows(file, schema, capture.target)]


@pytest.mark.parametrize("data_format", ["parquet", "csv"])
def test_a_capture_on_s3_equals_the_source_in_the_dms_layout(world, s3_url, data_format):
    out, _ = tail(s3_url, "--data-format", data_format)
    assert "full load of" in out and s3_url in out
    for round_number in range(2):
        make_changes(round_number)
        tail(s3_url)
    out = io.StringIO()
    call_command("verify_cdc", s3_url, stdout=out)
    assert "snapshot + changes = source" in out.getvalue()
    capture = Capture.load(location(s3_url))
    assert capture.target.s3_settings() == S3Target(data_format=data_format).s3_settings()
    date = capture.loaded_at[:10].replace("-", "/")
    suffix = capture.target.suffix
    for table in read_tables(params()):
        names = keys(s3_url, f"public/{table}")
        assert f"public/{table}/{date}/LOAD00000001{suffix}" in names
        for key in names:
            name = key.rsplit("/", 1)[1]
            assert name.startswith("LOAD") or CHANGE_NAME.fullmatch(name), key
    # Nothing but the data, the record and the lease's absence: no temporary objects.
    assert {key for key in keys(s3_url) if not key.startswith("public/")} == {"capture.json"}


@pytest.mark.parametrize("point", [*CRASH_POINTS, "between-load-files"])
def test_a_kill_at_any_window_neither_loses_nor_repeats(world, s3_url, point, tmp_path):
    settings = tmp_path / "s3-settings.json"
    # LOAD files split at 16 KB, so that a full load has windows between its files too.
    settings.write_text(json.dumps(S3Target(data_format="csv", max_file_size=16).s3_settings()))
    if point != "between-load-files":
        tail(s3_url, "--s3-settings", str(settings))
        make_changes(0)
    killed = manage(
        "cdc_tail", "--slot", SLOT, "--output", s3_url, "--s3-settings", str(settings),
        CDC_TAIL_CRASH_AT=point,
    )  # fmt: skip
    _, err = killed.communicate(timeout=60)
    assert killed.returncode == 137, err
    if point == "before-capture-record":
        # The batch's files are in the bucket, but the record does not name them: readers
        # leave them alone, and the restart deletes them.
        capture = Capture.load(location(s3_url))
        unrecorded = [k for k in keys(s3_url, "public") if not capture.records(k.rsplit("/")[-1])]
        assert unrecorded
        _, tables = open_capture(location(s3_url))
        taken = {file.key for files in tables.values() for file in files.ordered}
        assert not taken & set(unrecorded)
    make_changes(1)  # new work arrives before the restart
    tail(s3_url)
    make_changes(2)
    tail(s3_url)
    assert_same(s3_url)  # includes: no (key, sequence) twice, sequences rising
    books = Product.objects.filter(sku__startswith="BOO").count()
    # Each price change once (a full load cut short starts again, and takes round 1 in).
    rounds = 1 if point == "between-load-files" else 3
    assert len(change_rows(s3_url, "core_product")) == rounds * books


def test_one_cdc_tail_per_capture_by_a_lease_s3_enforces(world, s3_url):
    tail(s3_url, "--data-format", "csv")
    follower = manage("cdc_tail", "--slot", SLOT, "--output", s3_url, "--follow")
    try:
        wait_for(lambda: LEASE_FILE in keys(s3_url) or follower.poll() is not None)
        assert follower.poll() is None, follower.communicate()
        with pytest.raises(CommandError, match=r"another cdc_tail .* is writing into") as error:
            tail(s3_url)
        assert "\n" not in str(error.value)
    finally:
        follower.send_signal(signal.SIGTERM)
        _, err = follower.communicate(timeout=30)
    assert follower.returncode == 0, err
    assert LEASE_FILE not in keys(s3_url)  # let go on the way out


def test_a_lease_of_a_dead_process_is_taken_over_and_a_live_one_elsewhere_is_not(world, s3_url):
    tail(s3_url, "--data-format", "csv")
    follower = manage("cdc_tail", "--slot", SLOT, "--output", s3_url, "--follow")
    wait_for(lambda: slot_is_read(SLOT), what="the follower")
    follower.kill()  # SIGKILL: the lease stays behind, unexpired
    follower.communicate(timeout=30)
    assert LEASE_FILE in keys(s3_url)
    make_changes(0)
    tail(s3_url)  # its holder is gone from this machine: taken over at once
    assert_same(s3_url)
    where = location(s3_url)
    record = {"owner": "x", "holder": "cdc_tail", "host": "elsewhere", "pid": 1}
    where.write(LEASE_FILE, json.dumps({**record, "expires": time.time() + 60}).encode())
    with pytest.raises(CommandError, match=r"pid 1 on elsewhere\) is writing into"):
        tail(s3_url)
    where.write(LEASE_FILE, json.dumps({**record, "expires": time.time() - 1}).encode())
    tail(s3_url)  # run out: taken over


def test_a_lost_lease_and_a_record_changed_behind_its_back_stop_the_writer(world, s3_url):
    tail(s3_url, "--data-format", "csv")
    where = location(s3_url)
    lease = S3Lease(where, "cdc_tail")
    where.write(LEASE_FILE, b'{"owner": "thief", "expires": 0}')
    lease.renewed = 0  # due for renewal
    with pytest.raises(StorageError, match="lost the lease"):
        lease.keep()
    capture = Capture.load(location(where))
    other = Capture.load(location(where))
    other.flushed_lsn += 1
    other.save(where)  # another writer replaces the record
    with pytest.raises(CaptureError, match="changed by another writer"):
        capture.save(where)


def test_a_crashed_upload_is_aborted_on_restart(world, s3_url, s3_store):
    tail(s3_url, "--data-format", "csv")
    where = location(s3_url)
    client = s3_store.client()
    client.create_multipart_upload(Bucket=where.bucket, Key=where.key("public/core_order/x.csv"))
    prefix = where.prefix + "/"
    assert client.list_multipart_uploads(Bucket=where.bucket, Prefix=prefix).get("Uploads")
    tail(s3_url)
    assert not client.list_multipart_uploads(Bucket=where.bucket, Prefix=prefix).get("Uploads")


def fails(url: str, **environment: str) -> str:
    process = manage("cdc_tail", "--slot", SLOT, "--output", url, **environment)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 1, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_bad_credentials_a_missing_bucket_and_a_store_down_are_one_line_each(
    world, s3_url, s3_store
):
    assert "S3 refused the credentials" in fails(s3_url, AWS_SECRET_ACCESS_KEY="wrong")
    assert "the bucket does not exist" in fails("s3://no-such-bucket/cdc")
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    assert "cannot reach S3 at" in fails(s3_url, AWS_ENDPOINT_URL=closed)
    assert "bad://x" in fails_usage("bad://x")
    # Nothing was written, and no slot was made.
    assert keys(s3_url) == []
    assert value("SELECT count(*) FROM pg_replication_slots") == 0


def fails_usage(url: str) -> str:
    with pytest.raises(CommandError) as error:
        tail(url)
    return str(error.value)


def test_the_local_store_down_is_one_line_that_says_how_to_start_it(world, tmp_path):
    from devstack.locals3 import LocalStore

    stopped = LocalStore(tmp_path / "locals3")
    stopped.initialise()  # set up once, not running now
    clean = dict.fromkeys(("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_PROFILE"), "")
    err = fails("s3://lakehouse/cdc", LOCALS3_DIR=str(stopped.state_dir), **clean)
    assert "the local S3 store is not running: start it with `make s3`" in err
