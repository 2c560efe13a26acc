"""simulate: deterministic, invariant-keeping business actions, and a CDC stream that adds up."""

import io
import signal
import subprocess
import sys
import time

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from core.loading import delete_all
from core.replication.capture import verify
from core.seeding import seed_all
from core.simulation.runner import simulate
from tests.conftest import NOW
from tests.seeded import ORDERS_NOT_ADDING_UP, digest, subprocess_environment, value
from tests.test_settings import ROOT

pytestmark = pytest.mark.django_db(transaction=True)


def reseed() -> None:
    with connection.cursor() as cursor:
        delete_all(cursor)
    seed_all(scale="small", seed=41, now=NOW)


def test_same_seed_and_count_from_the_same_data_give_the_same_changes():
    reseed()
    first = simulate(seed=3, rate=0, count=600)
    after_first = digest()
    reseed()
    second = simulate(seed=3, rate=0, count=600)
    assert digest() == after_first
    assert first.changes == second.changes
    reseed()
    simulate(seed=4, rate=0, count=600)
    assert digest() != after_first


def test_every_invariant_holds_after_thousands_of_actions():
    reseed()
    result = simulate(seed=8, rate=0, count=2500)
    deletes = {table for (table, op), rows in result.changes.items() if op == "delete" and rows}
    assert {"core_customer", "core_order", "core_event"} <= deletes
    assert {op for (_, op) in result.changes} == {"insert", "update", "delete"}
    end = result.simulated_until
    assert value(ORDERS_NOT_ADDING_UP) == 0
    assert (
        value(
            "SELECT count(*) FROM core_order o WHERE NOT EXISTS (SELECT 1 FROM core_orderitem i WHERE i.order_id = o.id)"
        )
        == 0
    )
    assert value("SELECT count(*) FROM core_event WHERE event_type = 'purchase'") == value(
        "SELECT count(*) FROM core_order"
    )
    assert (
        value(
            "SELECT count(*) FROM core_event e JOIN core_order o ON o.id = e.order_id "
            "WHERE e.customer_id <> o.customer_id OR e.created_at <> o.created_at"
        )
        == 0
    )
    assert (
        value(
            "SELECT count(*) FROM core_orderitem i JOIN core_order o ON o.id = i.order_id "
            "JOIN core_product p ON p.id = i.product_id WHERE i.unit_price <> p.price "
            "AND o.created_at > p.updated_at"
        )
        == 0
    )  # an item bought after the last price change has that price
    assert (
        value(
            "SELECT count(*) FROM core_subscription WHERE monthly_amount NOT IN (9.99, 29.99, 99.99, 299.99) "
            "OR (plan = 'basic') <> (monthly_amount = 9.99) OR (plan = 'enterprise') <> (monthly_amount = 299.99)"
        )
        == 0
    )
    assert (
        value(
            "SELECT count(*) FROM core_invoice WHERE status = 'overdue' AND due_date >= %s",
            [end.date()],
        )
        == 0
    )
    for table in ("customer", "order", "event", "subscription", "invoice", "product"):
        assert (
            value(
                f"SELECT count(*) FROM core_{table} WHERE created_at > %s OR updated_at > %s",
                [end, end],
            )
            == 0
        )


def drain(folder) -> None:
    call_command(
        "cdc_tail",
        "--slot",
        "sim_tail",
        "--output",
        str(folder),
        stdout=io.StringIO(),
        stderr=io.StringIO(),
    )


def test_snapshot_plus_changes_equals_source_after_a_simulation(tmp_path):
    reseed()
    drain(tmp_path)
    try:
        result = simulate(seed=12, rate=0, count=2000)
        assert result.changes[("core_customer", "delete")] > 0
        drain(tmp_path)
        report = verify(connection.connection, tmp_path)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_drop_replication_slot('sim_tail')")
    assert all(c["missing"] == c["extra"] == c["changed"] == 0 for c in report.values()), report


def test_focus_on_one_tenant():
    reseed()
    slug = value("SELECT slug FROM core_tenant ORDER BY slug LIMIT 1")
    before = value("SELECT max(updated_at) FROM core_order")
    out = io.StringIO()
    call_command("simulate", "--rate", "0", "--count", "200", "--tenant", slug, stdout=out)
    touched = value(
        "SELECT array_agg(DISTINCT t.slug) FROM core_order o JOIN core_tenant t "
        "ON t.id = o.tenant_id WHERE o.updated_at > %s",
        [before],
    )
    assert touched == [slug]
    assert "200 actions" in out.getvalue()
    assert "commit latency p50" in out.getvalue()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate", "-1"], "--rate must be 0"),
        (["--count", "0"], "--count must be at least 1"),
        (["--duration", "0"], "--duration must be a positive"),
        (["--speedup", "0"], "--speedup must be positive"),
        (["--tenant", "nobody"], "no tenant 'nobody'"),
    ],
)
def test_bad_input_is_a_clear_error(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("simulate", *args, stdout=io.StringIO())


def test_sigterm_finishes_the_current_transaction_and_prints_totals():
    reseed()
    environment = subprocess_environment()
    run = subprocess.Popen(
        [sys.executable, "manage.py", "simulate", "--rate", "40", "--duration", "60"],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(3)
    run.send_signal(signal.SIGTERM)
    out, err = run.communicate(timeout=30)
    assert run.returncode == 0, err
    assert "actions," in out and "row changes/s" in out
