"""cdc_tail on a real slot: files exactly as the S3 target settings say, values verbatim, one
change sequence, and exactly once through every kill window, restart and refusal."""

import io
import json
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from core.capture.files import read_rows
from core.capture.record import Capture
from core.capture.target import LOAD_SEQUENCE, S3Target, change_range
from core.models import Customer, Event, Order, Product
from core.replication.connections import read_tables
from core.source.sessions import session_params
from core.storage import LocalLocation, StoredFile, location
from core.verify.capture import verify_capture
from tests.seeded import (
    events_grow_past,
    restart_server,
    slot_is_read,
    subprocess_environment,
    value,
    wait_for,
)
from tests.test_settings import ROOT

pytestmark = pytest.mark.django_db(transaction=True)
SLOT = "test_tail"
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}")


def params() -> dict:
    return connection.get_connection_params()


def tail(folder: Path | None, *args: str, slot: str = SLOT) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    output = ["--output", str(folder)] if folder else []
    call_command("cdc_tail", "--slot", slot, *output, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def manage(*args: str, **environment: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**subprocess_environment(), **environment},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def make_changes(round_number: int) -> None:
    """Inserts, updates and deletes across tables, with awkward values, each committed."""
    customer = Customer.objects.order_by("customer_number")[round_number]
    customer.city = f'O\'Brien "{round_number}"\nsecond line, with comma\tand tab'
    customer.region = ""
    customer.birth_date = None
    customer.save()
    Product.objects.filter(sku__startswith="BOO").update(price=f"{10 + round_number}.10")
    order = Order.objects.filter(status="pending").order_by("id").first()
    if order is not None:
        Order.objects.filter(pk=order.pk).update(status="processing")
    event = Event.objects.filter(event_type="page_view").order_by("id")[round_number]
    Event.objects.filter(pk=event.pk).update(properties={"note": f"round {round_number}"})
    victim = Customer.objects.order_by("-customer_number")[round_number]
    victim.delete()  # an erasure: orders, items, events, subscriptions and invoices go too


def report_of(folder: Path) -> dict:
    return verify_capture(params(), location(folder))


def assert_same(folder: Path) -> None:
    reports = report_of(folder)
    wrong = {name: report for name, report in reports.items() if not report.same}
    assert not wrong, wrong


def change_files(folder: Path, table: str) -> list[Path]:
    return sorted(
        (p for p in (folder / "public" / table).rglob("*") if change_range(p.name)),
        key=lambda p: p.name,
    )


def stored(path: Path) -> StoredFile:
    return StoredFile(LocalLocation(path.parent), path.name, path.stat().st_size)


def rows_of(folder: Path, table: str, files: list[Path]) -> list[dict]:
    capture = Capture.load(location(folder))
    schema = read_tables(params())[table]
    return [row for path in files for row in read_rows(stored(path), schema, capture.target)]


@pytest.mark.parametrize("data_format", ["csv", "parquet"])
def test_snapshot_plus_changes_equals_the_source(world, tmp_path, data_format):
    out, _ = tail(tmp_path, "--data-format", data_format)
    assert "full load of" in out
    for round_number in range(3):
        make_changes(round_number)
        tail(tmp_path)  # the folder keeps its format
    assert change_files(tmp_path, "core_customer")
    assert_same(tmp_path)
    out = io.StringIO()
    call_command("verify_cdc", str(tmp_path), stdout=out)
    assert "snapshot + changes = source" in out.getvalue()


def test_files_are_what_the_exported_s3_settings_make_dms_write(world, tmp_path):
    """One description drives both: export_dms's settings and cdc_tail's files agree."""
    call_command("export_dms", "--output", str(tmp_path / "dms"), stdout=io.StringIO())
    exported = json.loads((tmp_path / "dms/s3-settings.json").read_text())
    for data_format in ("parquet", "csv"):
        folder = tmp_path / data_format
        tail(folder, "--data-format", data_format, slot=f"tail_{data_format}")
        make_changes(0 if data_format == "parquet" else 1)
        tail(folder, slot=f"tail_{data_format}")
        capture = Capture.load(location(folder))
        assert capture.target.s3_settings() == {**exported, "DataFormat": data_format}
        target = capture.target
        for table in ("core_customer", "core_product"):
            load = sorted((folder / "public" / table).rglob("LOAD*"))
            assert [p.name for p in load] == [target.load_name(1)]
            date = capture.loaded_at[:10].replace("-", "/")
            assert load[0].parent == folder / "public" / table / date
            for path in change_files(folder, table):
                first, last = change_range(path.name)
                assert capture.snapshot_lsn < first <= last <= capture.flushed_lsn
                assert path.parent.relative_to(folder / "public" / table).as_posix() == (
                    f"{path.name[:4]}/{path.name[4:6]}/{path.name[6:8]}"
                )
        customer = change_files(folder, "core_customer")[0]
        if data_format == "csv":
            lines = customer.read_text().split("\n")
            assert lines[0].split(",")[:2] == ["Op", "dms_commit_ts"]
            assert lines[0].endswith(",ar_h_change_seq")
            assert any(f",{target.csv_null_value}," in line for line in lines[1:])
        else:
            schema = pq.read_schema(customer)
            assert str(schema.field("dms_commit_ts").type) == "string"
            assert str(schema.field("created_at").type) == "timestamp[ms, tz=UTC]"
            assert str(schema.field("customer_number").type) == "int32"
        rows = rows_of(folder, "core_customer", [customer])
        assert {row["Op"] for row in rows} >= {"U", "D"}
        assert all(TIMESTAMP.fullmatch(row["dms_commit_ts"]) for row in rows)
        assert all(TIMESTAMP.fullmatch(row["updated_at"]) for row in rows if row["Op"] != "D")
        deleted = next(row for row in rows if row["Op"] == "D")
        assert deleted["email"] is None  # default replica identity: the key only


def test_values_are_written_verbatim(world, tmp_path):
    tail(tmp_path, "--data-format", "csv")
    event = Event.objects.filter(event_type="page_view").order_by("id").first()
    raw = '{"b": 1.10, "a": 0.1234567890123456789, "é": "ünï \\"q\\"", "n": null}'
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE core_event SET properties = %s::jsonb, referrer = '' WHERE id = %s",
            [raw, event.id],
        )
        cursor.execute("UPDATE core_product SET price = 1234567890.10 WHERE sku = 'BOO-000001'")
    tail(tmp_path)
    printed = value("SELECT properties::text FROM core_event WHERE id = %s", [event.id])
    assert "0.1234567890123456789" in printed and "1.10" in printed and "é" in printed
    updates = rows_of(tmp_path, "core_event", change_files(tmp_path, "core_event"))
    assert [r["properties"] for r in updates if r["id"] == str(event.id)] == [printed]
    # An empty string is a quoted empty field, which Spark too reads as '' (an unquoted one
    # it takes for NULL); NULL is the CsvNullValue.
    [line] = [
        line
        for path in change_files(tmp_path, "core_event")
        for line in path.read_text().splitlines()
        if str(event.id) in line
    ]
    assert ',"",' in line and ",\\N," in line
    [update] = [r for r in updates if r["id"] == str(event.id)]
    assert (update["referrer"], update["order_id"]) == ("", None)
    prices = rows_of(tmp_path, "core_product", change_files(tmp_path, "core_product"))
    assert "1234567890.10" in {row["price"] for row in prices}
    assert_same(tmp_path)


def test_one_change_sequence_in_commit_order_with_the_full_load_below(world, tmp_path):
    events = value("SELECT count(*) FROM core_event")
    simulation = manage("simulate", "--rate", "0", "--duration", "8", "--seed", "3")
    wait_for(lambda: events_grow_past(events), what="simulate")  # the full load runs meanwhile
    tail(tmp_path, "--data-format", "csv")
    simulation.communicate(timeout=60)
    tail(tmp_path)
    assert_same(tmp_path)
    capture = Capture.load(location(tmp_path))
    changes, loads = [], []
    for table in read_tables(params()):
        folder = tmp_path / "public" / table
        loads += rows_of(tmp_path, table, sorted(folder.rglob("LOAD*")))
        changes += rows_of(tmp_path, table, change_files(tmp_path, table))
    assert len(changes) > 500
    assert {row["ar_h_change_seq"] for row in loads} == {LOAD_SEQUENCE}
    assert {row["dms_commit_ts"] for row in loads} == {capture.loaded_at}
    sequences = [row["ar_h_change_seq"] for row in changes]
    assert len(set(sequences)) == len(sequences)
    ordered = sorted(changes, key=lambda row: row["ar_h_change_seq"])
    stamps = [row["dms_commit_ts"] for row in ordered]
    assert stamps == sorted(stamps)  # sequence order is commit order
    assert capture.loaded_at <= stamps[0]  # every full-load row at or before every change


def incompressible_json(size: int) -> str:
    return json.dumps({"blob": secrets.token_hex(size // 2)})


@pytest.mark.parametrize("identity", ["full", "default"])
def test_an_update_that_leaves_a_toasted_value_unchanged(world, tmp_path, identity):
    """FULL (what setup_replication gives LOB tables) carries the value on; DEFAULT cannot,
    and like DMS writes NULL, says so, and verify_cdc finds the difference."""
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE core_event REPLICA IDENTITY {identity.upper()}")
    event = Event.objects.filter(event_type="page_view").order_by("id").first()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE core_event SET properties = %s::jsonb WHERE id = %s",
            [incompressible_json(4096), event.id],
        )
    tail(tmp_path, "--data-format", "csv")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE core_event SET device = 'tablet' WHERE id = %s", [event.id])
    _, err = tail(tmp_path)
    rows = rows_of(tmp_path, "core_event", change_files(tmp_path, "core_event"))
    update = next(row for row in rows if row["id"] == str(event.id))
    assert update["device"] == "tablet"
    assert "unchanged-toast-datum" not in json.dumps(rows)
    reports = report_of(tmp_path)
    if identity == "full":
        live = value("SELECT properties::text FROM core_event WHERE id = %s", [event.id])
        assert update["properties"] == live
        assert reports["core_event"].same
    else:
        assert update["properties"] is None
        assert "written as NULL, as DMS writes them" in err
        assert reports["core_event"].changed == [str(event.id)]
        assert "properties: files None" in reports["core_event"].examples[0]


CRASH_POINTS = [
    "between-batch-files",
    "before-folder-sync",
    "before-capture-record",
    "before-feedback",
]


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_a_kill_at_any_point_of_a_batch_neither_loses_nor_repeats(world, tmp_path, point):
    tail(tmp_path, "--data-format", "csv")
    make_changes(0)
    crashed = manage("cdc_tail", "--slot", SLOT, "--output", str(tmp_path), CDC_TAIL_CRASH_AT=point)
    _, err = crashed.communicate(timeout=60)
    assert crashed.returncode == 137, err
    make_changes(1)  # new work arrives before the restart
    tail(tmp_path)
    assert_same(tmp_path)  # includes: no (key, sequence) twice, sequences rising
    rows = rows_of(tmp_path, "core_product", change_files(tmp_path, "core_product"))
    books = Product.objects.filter(sku__startswith="BOO").count()
    assert len(rows) == 2 * books  # each round's price change once


def small_files(folder: Path) -> str:
    """Settings with LOAD files split at 16 KB, so that a table has several."""
    path = folder / "s3-settings.json"
    path.write_text(json.dumps(S3Target(data_format="csv", max_file_size=16).s3_settings()))
    return str(path)


def test_load_files_split_at_max_file_size_and_a_kill_between_them_starts_again(world, tmp_path):
    settings = small_files(tmp_path)
    output = tmp_path / "capture"
    crashed = manage(
        "cdc_tail",
        "--slot",
        SLOT,
        "--output",
        str(output),
        "--s3-settings",
        settings,
        CDC_TAIL_CRASH_AT="between-load-files",
    )
    _, err = crashed.communicate(timeout=60)
    assert crashed.returncode == 137, err
    assert not (output / "capture.json").exists()
    make_changes(0)
    tail(output, "--s3-settings", settings)
    events = sorted(p.name for p in (output / "public/core_event").rglob("LOAD*"))
    assert Capture.load(location(output)).target.max_file_size == 16
    assert len(events) > 9 and events[9] == "LOAD0000000A.csv"  # counted in hex
    assert all(p.stat().st_size < 20 * 1024 for p in (output / "public").rglob("LOAD*"))
    make_changes(1)
    tail(output)
    assert_same(output)


def test_a_write_that_fails_half_way_through_a_batch_is_written_once_later(world, tmp_path):
    """A fault between two files of one batch (a table's folder unwritable), with new changes
    before the retry: nothing lost, nothing repeated."""
    tail(tmp_path, "--data-format", "csv")
    make_changes(0)
    folder = tmp_path / "public" / "core_product"
    shutil.move(folder, tmp_path / "moved")
    folder.write_text("not a folder")
    with pytest.raises(CommandError):
        tail(tmp_path)
    folder.unlink()
    shutil.move(tmp_path / "moved", folder)
    make_changes(1)
    tail(tmp_path)
    assert_same(tmp_path)
    rows = rows_of(tmp_path, "core_customer", change_files(tmp_path, "core_customer"))
    keys = [(row["id"], row["ar_h_change_seq"]) for row in rows]
    assert len(keys) == len(set(keys))


def test_one_process_per_folder_and_one_reader_per_slot(world, tmp_path):
    tail(tmp_path, "--data-format", "csv")
    follower = manage("cdc_tail", "--slot", SLOT, "--output", str(tmp_path), "--follow")
    try:
        wait_for(lambda: slot_is_read(SLOT), what="the follower")
        with pytest.raises(CommandError, match="another cdc_tail is writing into"):
            tail(tmp_path)
        with pytest.raises(CommandError, match="being read by another process"):
            tail(None)
    finally:
        follower.send_signal(signal.SIGTERM)
        follower.communicate(timeout=30)
    assert follower.returncode == 0


def test_a_slot_consumed_behind_the_folders_back_is_refused(world, tmp_path):
    tail(tmp_path)
    make_changes(0)
    value("SELECT count(*) FROM pg_logical_slot_get_changes(%s, NULL, NULL)", [SLOT])
    with pytest.raises(CommandError, match="another reader consumed changes"):
        tail(tmp_path)


def test_a_full_disk_is_one_line(world, tmp_path):
    tail(tmp_path, "--data-format", "csv")
    make_changes(0)
    staging = tmp_path / ".staging"
    staging.mkdir(exist_ok=True)
    for table in read_tables(params()):
        (staging / f"{table}.csv.partial").symlink_to("/dev/full")
    with pytest.raises(CommandError, match="no space left on the disk holding") as error:
        tail(tmp_path)
    assert "\n" not in str(error.value)
    shutil.rmtree(staging)
    tail(tmp_path)
    assert_same(tmp_path)


def test_no_free_slot_and_no_replication_right_are_one_line_each(world, tmp_path):
    limit = int(value("SHOW max_replication_slots"))
    used = value("SELECT count(*) FROM pg_replication_slots")
    extra = [f"filler_{n}" for n in range(limit - used)]
    try:
        for name in extra:
            value("SELECT 1 FROM pg_create_logical_replication_slot(%s, 'test_decoding')", [name])
        with pytest.raises(CommandError, match="all replication slots are in use"):
            tail(tmp_path)
    finally:
        for name in extra:
            value("SELECT pg_drop_replication_slot(%s)", [name])
    password = secrets.token_urlsafe(12)
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE ROLE plain_reader LOGIN PASSWORD '{password}'")
    try:
        limited = {**params(), "user": "plain_reader", "password": password}
        from core.errors import CaptureError
        from core.replication.tail import run_capture

        with pytest.raises(CaptureError, match="may not read replication slots"):
            run_capture(limited, slot="other", output=None, create_slot=True)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP ROLE plain_reader")


def confirmed_past(lsn: str) -> bool:
    return value(
        "SELECT confirmed_flush_lsn >= %s::pg_lsn FROM pg_replication_slots WHERE slot_name = %s",
        [lsn, SLOT],
    )


@pytest.mark.slow
def test_follow_survives_a_postgresql_restart_and_a_kill(world, tmp_path):
    tail(tmp_path, "--data-format", "csv")
    first = manage(
        "cdc_tail", "--slot", SLOT, "--output", str(tmp_path), "--follow", "--batch-seconds", "1"
    )
    make_changes(0)
    target = value("SELECT pg_current_wal_lsn()::text")
    wait_for(lambda: confirmed_past(target))
    restart_server()
    make_changes(1)
    target = value("SELECT pg_current_wal_lsn()::text")
    wait_for(lambda: confirmed_past(target))
    first.kill()  # SIGKILL: no chance to tidy up
    _, err = first.communicate(timeout=30)
    assert "lost the connection to PostgreSQL" in err and "reconnected" in err
    assert "Traceback" not in err
    make_changes(2)
    second = manage(
        "cdc_tail", "--slot", SLOT, "--output", str(tmp_path), "--follow", "--batch-seconds", "1"
    )
    target = value("SELECT pg_current_wal_lsn()::text")
    wait_for(lambda: confirmed_past(target))
    second.send_signal(signal.SIGTERM)
    _, err = second.communicate(timeout=30)
    assert second.returncode == 0, err
    assert_same(tmp_path)


def test_terminal_output_in_text_and_json(world):
    tail(None, "--create-slot")
    Product.objects.filter(sku="BOO-000001").update(price="12.50")
    out, _ = tail(None, "--format", "json")
    changes = [json.loads(line) for line in out.strip().splitlines()]
    assert changes and {change["Op"] for change in changes} == {"U"}
    assert changes[0]["table"] == "public.core_product"
    assert changes[0]["values"]["price"] == "12.50"
    Product.objects.filter(sku="BOO-000001").update(price="13.00")
    out, _ = tail(None)
    assert out.startswith("U ") and "core_product" in out and "'13.00'" in out


def test_a_drain_to_the_terminal_lets_go_of_what_it_showed(world, caplog):
    """Two drains in a row: the second shows only what came after the first."""
    _, made = tail(None, "--create-slot")
    # Not on a terminal, a drain's note is a plain line of its output (a service's would be a
    # log record, for a service manager's log).
    assert f"made slot {SLOT}: it keeps WAL until you drop it" in made
    assert "made slot" not in caplog.text
    Product.objects.filter(sku="BOO-000001").update(price="21.50")
    first, _ = tail(None)
    assert "'21.50'" in first
    second, err = tail(None)
    assert second == "" and err.startswith("0 changes"), (second, err)
    Product.objects.filter(sku="BOO-000001").update(price="22.50")
    third, _ = tail(None)
    assert "'22.50'" in third and "'21.50'" not in third


def test_a_slot_is_made_only_when_asked_for(world):
    """A mistyped --slot must not make a slot that keeps WAL for ever."""
    tail(None, "--create-slot")
    with pytest.raises(CommandError, match=rf"there is no slot tset_tail \(slots: {SLOT}\)"):
        tail(None, slot="tset_tail")
    assert value("SELECT count(*) FROM pg_replication_slots WHERE slot_name = 'tset_tail'") == 0


def test_an_existing_slot_without_files_is_a_clear_error(world, tmp_path):
    tail(None, "--create-slot")
    with pytest.raises(CommandError, match="already exists but"):
        tail(tmp_path)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--slot", "Bad-Name"], "--slot: slot name 'Bad-Name'"),
        (["--slot", "x; DROP TABLE core_order"], "--slot: slot name"),
        (["--batch-seconds", "0"], "--batch-seconds: must be at least 1, not 0"),
    ],
)
def test_bad_input_is_one_line(args, message):
    with pytest.raises(CommandError, match=re.escape(message)):
        call_command("cdc_tail", *args, stdout=io.StringIO(), stderr=io.StringIO())
    assert value("SELECT count(*) FROM pg_replication_slots") == 0


def test_session_parameters_force_one_time_zone_and_drop_djangos_cursor():
    assert "TimeZone=UTC" in session_params({"options": "-c x=1"})["options"]
    assert "-c x=1" in session_params({"options": "-c x=1"})["options"]
    assert "cursor_factory" not in session_params({"cursor_factory": object})


@pytest.fixture
def captured(world, tmp_path) -> Path:
    """A CSV capture with a full load and two rounds of changes, in two batches."""
    tail(tmp_path, "--data-format", "csv")
    for round_number in range(2):
        make_changes(round_number)
        tail(tmp_path)
    assert len(change_files(tmp_path, "core_customer")) == 2
    return tmp_path


def stream_problems(folder: Path, table: str) -> list[str]:
    return report_of(folder)[table].problems


def test_verify_finds_a_file_delivered_twice(captured):
    first = change_files(captured, "core_customer")[0]
    elsewhere = captured / "public/core_customer/2026/01/01"
    elsewhere.mkdir(parents=True)
    shutil.copy(first, elsewhere / first.name)
    problems = stream_problems(captured, "core_customer")
    assert any("pairs appear more than once" in problem for problem in problems), problems
    out = io.StringIO()
    with pytest.raises(CommandError, match="1 tables differ") as error:
        call_command("verify_cdc", str(captured), stdout=out)
    assert error.value.returncode == 1
    assert "pairs appear more than once" in out.getvalue()


def test_verify_finds_sequences_that_go_back(captured):
    _, second = change_files(captured, "core_customer")
    renamed = second.with_name("20000101-0000000000" + second.name[19:])
    second.rename(renamed)  # the later batch now sorts first
    problems = stream_problems(captured, "core_customer")
    assert any("sequences go back" in problem for problem in problems), problems


def test_verify_finds_a_full_load_stamped_after_a_change(captured):
    load = next((captured / "public/core_customer").rglob("LOAD*"))
    loaded_at = Capture.load(location(captured)).loaded_at
    load.write_text(load.read_text().replace(loaded_at, "2999-01-01 00:00:00.000000"))
    problems = stream_problems(captured, "core_customer")
    assert any("full-load rows are stamped" in problem for problem in problems), problems


def test_verify_finds_a_file_that_does_not_follow_the_settings(captured):
    first = change_files(captured, "core_customer")[0]
    first.write_text(first.read_text().replace("Op,dms_commit_ts", "op;ts", 1).replace(",", ";"))
    report = report_of(captured)["core_customer"]
    assert any("not readable" in problem for problem in report.problems), report.problems


def test_verify_names_the_columns_that_differ(captured):
    customer = Customer.objects.order_by("customer_number").first()
    with connection.cursor() as cursor:  # behind the capture's back: no drain after it
        cursor.execute("UPDATE core_customer SET city = 'Elsewhere' WHERE id = %s", [customer.id])
    report = report_of(captured)["core_customer"]
    assert report.changed == [str(customer.id)]
    assert "city: files" in report.examples[0] and "source 'Elsewhere'" in report.examples[0]


def test_a_huge_transaction_is_spilled_to_disk_not_held_in_memory(world, tmp_path, monkeypatch):
    from core.replication import stream

    tail(tmp_path, "--data-format", "csv")
    with connection.cursor() as cursor:
        cursor.execute("UPDATE core_event SET device = 'tablet' WHERE device <> 'tablet'")
        updated = cursor.rowcount
    spills = []
    real = stream.tempfile.TemporaryFile
    monkeypatch.setattr(stream, "SPILL_AFTER", 100)
    monkeypatch.setattr(
        stream.tempfile, "TemporaryFile", lambda **kw: spills.append(1) or real(**kw)
    )
    tail(tmp_path)
    assert updated > 1000 and spills == [1]
    rows = rows_of(tmp_path, "core_event", change_files(tmp_path, "core_event"))
    assert len(rows) == updated
    assert_same(tmp_path)


def test_follow_shows_its_full_load_at_once_and_its_totals_on_stdout(world, tmp_path):
    """Following into a new folder: the full load is told as soon as it is written (while the
    follower runs, not when it stops), and the totals at the end are the command's output."""
    follower = manage(
        "cdc_tail", "--slot", SLOT, "--output", str(tmp_path), "--follow", "--batch-seconds", "1"
    )
    notes: list[str] = []
    reader = threading.Thread(target=lambda: notes.extend(follower.stderr), daemon=True)
    reader.start()
    try:
        wait_for(lambda: any("full load:" in line for line in notes), what="the full load")
        make_changes(0)
        target = value("SELECT pg_current_wal_lsn()::text")
        wait_for(lambda: confirmed_past(target), what="the changes")
    finally:
        follower.send_signal(signal.SIGINT)
        follower.wait(timeout=30)
        out = follower.stdout.read()
        reader.join(timeout=10)
    assert follower.returncode == 0, notes
    loads = len([p for p in tmp_path.rglob("LOAD*") if p.is_file()])
    said = [line for line in notes if "full load:" in line]
    assert len(said) == 1 and f"rows in {loads} files from slot {SLOT}'s snapshot" in said[0]
    assert re.search(rf"full load of [\d,]+ rows in {loads} files", out), out
    assert re.search(r"^[\d,]+ changes in [\d,]+ files \(.*\) from", out, re.M), out
