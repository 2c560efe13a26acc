"""cdc_tail on a real slot: snapshot + changes = source, in CSV and Parquet, across a crash."""

import io
import json
import signal
import subprocess
import sys
import time
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from core.models import Customer, Event, Order, Product
from core.replication import capture
from core.replication.capture import read_csv, verify
from core.seeding import seed_all
from tests.conftest import NOW
from tests.seeded import subprocess_environment
from tests.test_settings import ROOT

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def world():
    seed_all(scale="small", seed=31, now=NOW)


@pytest.fixture
def slot_name():
    yield "test_tail"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
            "WHERE slot_name = 'test_tail'"
        )


def tail(*args: str) -> str:
    out = io.StringIO()
    call_command("cdc_tail", "--slot", "test_tail", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def make_changes(round_number: int) -> None:
    """Inserts, updates and deletes across tables, with awkward values, each committed."""
    customer = Customer.objects.order_by("customer_number")[round_number]
    customer.city = f'O\'Brien "{round_number}"\nsecond line, with comma'
    customer.region = ""
    customer.birth_date = None
    customer.save()
    Product.objects.filter(sku__startswith="BOO").update(
        price=Decimal("10.10") + round_number, updated_at=timezone.now()
    )
    order = Order.objects.filter(status="pending").order_by("id").first()
    if order is not None:
        Order.objects.filter(pk=order.pk).update(status="processing", updated_at=timezone.now())
    Event.objects.filter(
        pk=Event.objects.filter(event_type="page_view").order_by("id")[0].pk
    ).update(properties={"note": f"round {round_number}", "nested": {"quote": "it's"}})
    victim = Customer.objects.order_by("-customer_number")[round_number]
    victim.delete()  # an erasure: orders, items, events, subscriptions and invoices go too
    Customer.objects.create(
        tenant=customer.tenant,
        customer_number=10_000 + round_number,
        email=f"new{round_number}@example.com",
        first_name="New",
        last_name="Customer",
        city="Tab\there",
        country="US",
        signup_channel="organic",
        segment="budget",
        created_at=timezone.now() - timedelta(minutes=5),
        updated_at=timezone.now(),
    )


def assert_same(folder) -> None:
    report = verify(connection.connection, folder)
    assert all(counts["replayed"] == counts["live"] for counts in report.values()), report
    assert all(
        counts["missing"] == counts["extra"] == counts["changed"] == 0 for counts in report.values()
    ), report


@pytest.mark.parametrize("data_format", ["csv", "parquet"])
def test_snapshot_plus_changes_equals_the_source(world, slot_name, tmp_path, data_format):
    tail("--output", str(tmp_path), "--data-format", data_format)
    assert (tmp_path / "public/core_event" / f"LOAD00000001.{data_format}").exists()
    for round_number in range(3):
        make_changes(round_number)
        tail("--output", str(tmp_path), "--data-format", data_format)
    change_files = [
        p for p in (tmp_path / "public/core_customer").iterdir() if not p.name.startswith("LOAD")
    ]
    assert change_files
    assert_same(tmp_path)
    out = io.StringIO()
    call_command("verify_cdc", str(tmp_path), stdout=out)
    assert "snapshot + changes = source" in out.getvalue()


def test_csv_rows_carry_op_and_timestamp_and_keep_nulls_apart_from_empty_text(
    world, slot_name, tmp_path
):
    tail("--output", str(tmp_path))
    make_changes(0)
    tail("--output", str(tmp_path))
    folder = tmp_path / "public/core_customer"
    change_file = sorted(p for p in folder.iterdir() if not p.name.startswith("LOAD"))[0]
    rows = list(read_csv(change_file))
    ops = {row["Op"] for row in rows}
    assert ops == {"I", "U", "D"}
    updated = next(row for row in rows if row["Op"] == "U" and row["region"] == "")
    assert updated["birth_date"] is None
    assert updated["city"].startswith('O\'Brien "0"\nsecond line')
    assert updated["dms_commit_ts"]
    deleted = next(row for row in rows if row["Op"] == "D")
    assert deleted["email"] is None  # default replica identity: a delete carries the key only


def test_a_crash_between_writing_and_consuming_neither_loses_nor_repeats(
    world, slot_name, tmp_path, monkeypatch
):
    tail("--output", str(tmp_path))
    make_changes(0)

    def crash(cursor, slot, rows):
        raise KeyboardInterrupt  # killed after the files were written, before the slot moved

    monkeypatch.setattr(capture, "consume", crash)
    with pytest.raises(KeyboardInterrupt):
        tail("--output", str(tmp_path))
    monkeypatch.undo()
    make_changes(1)
    tail("--output", str(tmp_path))  # sees round 0 again, skips it, writes round 1
    assert_same(tmp_path)
    rows = [
        row
        for path in sorted((tmp_path / "public/core_product").glob("*.csv"))
        if not path.name.startswith("LOAD")
        for row in read_csv(path)
    ]
    updates = len(Product.objects.filter(sku__startswith="BOO"))
    assert len(rows) == 2 * updates  # once per round, not three times


def test_terminal_output_in_text_and_json(world, slot_name):
    tail()  # creates the slot
    Product.objects.filter(sku="BOO-000001").update(price=Decimal("12.50"))
    lines = tail("--format", "json").strip().splitlines()
    changes = [json.loads(line) for line in lines]
    assert changes and {change["Op"] for change in changes} == {"U"}
    assert changes[0]["table"] == "public.core_product"
    assert changes[0]["values"]["price"] == "12.50"
    Product.objects.filter(sku="BOO-000001").update(price=Decimal("13.00"))
    text = tail()
    assert text.startswith("U ")
    assert "core_product" in text and "'13.00'" in text


def test_an_existing_slot_without_files_is_a_clear_error(world, slot_name, tmp_path):
    tail()
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="already exists but"):
        tail("--output", str(tmp_path))


def follow(folder, environment) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "cdc_tail",
            "--slot",
            "test_tail",
            "--follow",
            "--output",
            str(folder),
            "--batch",
            "50",
        ],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(condition, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_follow_killed_mid_stream_and_restarted_resumes_without_gap_or_duplicate(
    world, slot_name, tmp_path
):
    environment = subprocess_environment()
    state = tmp_path / ".cdc_state.json"
    first = follow(tmp_path, environment)
    wait_for(state.exists)
    for round_number in range(4):
        make_changes(round_number)
    wait_for(lambda: json.loads(state.read_text()).get("files", 0) >= 1)
    first.kill()  # SIGKILL: no chance to tidy up
    first.wait()
    for round_number in range(4, 6):
        make_changes(round_number)
    second = follow(tmp_path, environment)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()::text")
        target = cursor.fetchone()[0]

    def caught_up() -> bool:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT confirmed_flush_lsn >= %s::pg_lsn FROM pg_replication_slots "
                "WHERE slot_name = 'test_tail'",
                [target],
            )
            return cursor.fetchone()[0]

    wait_for(caught_up)
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=30) == 0, second.stderr.read()
    assert_same(tmp_path)
