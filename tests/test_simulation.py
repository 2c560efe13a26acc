"""simulate: deterministic, rerunnable, concurrent, steady over months, and through faults."""

import io
import random
import signal
import subprocess
from datetime import UTC, datetime, timedelta

import psycopg2
import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from core.generation.billing import billing_period, invoices_for_subscription
from core.generation.orders import settled_status, settled_status_sql
from core.generation.pools import pools_for
from core.generation.randomness import new_uuid
from core.generation.rows import TABLE_ROWS
from core.generation.tenants import catalog_of, product_rows
from core.seeding.loading import delete_all
from core.seeding.seed import seed_all
from core.seeding.stored import stored_catalog, stored_subscriptions, stored_tenants
from core.simulation.runner import UNTHROTTLED_STEP, simulate
from core.source.sessions import session_params
from core.storage import location
from core.verify.capture import verify_capture
from tests.conftest import NOW
from tests.seeded import (
    digest,
    events_grow_past,
    invariant_violations,
    manage_py,
    restart_server,
    rows,
    value,
    wait_for,
)
from tests.test_settings import ROOT

pytestmark = pytest.mark.django_db(transaction=True)


def reseed(*, scale: str = "small", now: datetime = NOW, seed: int = 41) -> None:
    with connection.cursor() as cursor:
        delete_all(cursor)
    seed_all(scale=scale, seed=seed, now=now)


def manage(*args: str) -> subprocess.Popen:
    return manage_py(*args)


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


def test_runs_one_after_another_with_the_same_seed_never_collide():
    reseed()
    for _ in range(3):
        out = io.StringIO()
        call_command("simulate", "--rate", "0", "--count", "400", "--seed", "0", stdout=out)
        assert "400 actions" in out.getvalue()
    assert invariant_violations(datetime.now(UTC)) == {}


def test_every_invariant_holds_after_thousands_of_actions():
    reseed()
    result = simulate(seed=8, rate=0, count=2500)
    deletes = {table for (table, op), rows in result.changes.items() if op == "delete" and rows}
    assert {"core_customer", "core_order", "core_event"} <= deletes
    assert {op for (_, op) in result.changes} == {"insert", "update", "delete"}
    assert invariant_violations(result.simulated_until) == {}


def test_the_sql_and_python_order_fates_agree():
    rng = random.Random(6)
    ids = [new_uuid(rng) for _ in range(3000)]
    found = rows(f"SELECT id, {settled_status_sql('id')} FROM unnest(%s::uuid[]) AS id", [ids])
    assert dict(found) == {id: settled_status(id) for id in ids}


def test_a_catalogue_read_back_ranks_products_as_the_seeder_did():
    reseed()
    pools = pools_for(41)
    for tenant in stored_tenants():
        count = value("SELECT count(*) FROM core_product WHERE tenant_id = %s", [tenant.id])
        generated = catalog_of(
            product_rows(seed=41, tenant=tenant, numbers=range(1, count + 1), pools=pools)
        )
        assert [p.id for p in stored_catalog(tenant.id).products] == [
            p.id for p in generated.products
        ]


def missing_invoices(until: datetime) -> int:
    """Billing months that began more than a day before `until` and have no invoice."""
    missing, after = 0, None
    while batch := stored_subscriptions(after):
        for ref, invoiced in batch:
            expected = invoices_for_subscription(
                seed=0, subscription=ref, now=until - timedelta(days=1)
            )
            missing += sum(row.period_start not in invoiced for row in expected)
        after = batch[-1][0].id
    return missing


def share(sql: str, params: list) -> dict[str, float]:
    return {key: float(number) for key, number in rows(sql, params)}


@pytest.mark.slow
def test_a_three_month_run_stays_inside_the_spec():
    """95 simulated days on `medium`, ending now: the shop keeps the shape the spec describes,
    and the time-driven branches (trials, renewals, invoices) all run."""
    days, count = 95, 6000
    reseed(scale="medium", now=datetime.now(UTC) - timedelta(days=days + 2), seed=5)
    began = value("SELECT max(updated_at) FROM core_order")
    speedup = days * 86400 / (count * UNTHROTTLED_STEP.total_seconds())
    result = simulate(seed=12, rate=0, count=count, speedup=speedup)
    end = result.simulated_until
    assert end - began > timedelta(days=90)
    assert invariant_violations(end) == {}

    subscribed = value(
        "SELECT count(DISTINCT customer_id)::float / (SELECT count(*) FROM core_customer) "
        "FROM core_subscription"
    )
    assert 0.2 <= subscribed <= 0.4
    active_tiers = value(
        "SELECT count(DISTINCT t.tier) FROM core_subscription s JOIN core_tenant t "
        "ON t.id = s.tenant_id WHERE s.status = 'active'"
    )
    assert active_tiers == 3
    assert missing_invoices(end) == 0
    assert (
        value(
            "SELECT count(*) FROM core_invoice i JOIN core_subscription s ON s.id = i.subscription_id "
            "WHERE i.amount NOT IN (9.99, 29.99, 99.99, 299.99)"
        )
        == 0
    )

    tenants = value("SELECT count(*) FROM core_tenant")
    readme = (ROOT / "README.md").read_text().split("```sql\n", 1)[1].split("```", 1)[0]
    revenue, acquisition, funnel, mrr = [rows(sql) for sql in readme.split(";") if sql.strip()]
    assert len(revenue) == len(mrr) == tenants
    assert len(acquisition) >= 9  # 180 days of history and three more months
    ranked = [event for event, _ in funnel if event != "search"]
    assert ranked == ["page_view", "product_view", "add_to_cart", "checkout", "purchase"]

    old = share(
        "SELECT status, count(*)::float / sum(count(*)) OVER () FROM core_order "
        "WHERE created_at < %s GROUP BY 1",
        [end - timedelta(days=7)],
    )
    assert old["completed"] == pytest.approx(0.80, abs=0.05)
    assert old["processing"] == pytest.approx(0.10, abs=0.04)
    assert old["pending"] == pytest.approx(0.05, abs=0.03)
    assert old["cancelled"] == pytest.approx(0.05, abs=0.03)

    # The trial, renewal and invoice branches all ran, and moved rows forwards.
    assert min(result.actions[name] for name in ("trials", "renewals", "invoices")) > 0
    moved = dict(
        rows(
            "SELECT kind, count(*) FROM ("
            " SELECT 'converted' kind FROM core_subscription WHERE status = 'active' "
            "   AND trial_ends_at IS NOT NULL AND created_at < %(began)s AND updated_at > %(began)s"
            " UNION ALL SELECT 'trial ended' FROM core_subscription WHERE status IN "
            "   ('cancelled', 'expired') AND ended_at = trial_ends_at AND updated_at > %(began)s"
            " UNION ALL SELECT 'renewed' FROM core_subscription WHERE status = 'active' "
            "   AND current_period_start > %(began)s AND created_at < %(began)s - interval '40 days'"
            " UNION ALL SELECT 'churned' FROM core_subscription WHERE status IN "
            "   ('cancelled', 'expired') AND ended_at > %(began)s"
            " UNION ALL SELECT 'invoice raised' FROM core_invoice WHERE created_at > %(began)s"
            " UNION ALL SELECT 'invoice paid' FROM core_invoice WHERE paid_at > %(began)s"
            " UNION ALL SELECT 'invoice overdue' FROM core_invoice WHERE status = 'overdue' "
            "   AND updated_at > %(began)s"
            " UNION ALL SELECT 'draft sent' FROM core_invoice WHERE issued_at > created_at"
            ") x GROUP BY 1",
            {"began": began},
        )
    )
    for kind in (
        "converted",
        "trial ended",
        "renewed",
        "churned",
        "invoice raised",
        "invoice paid",
        "invoice overdue",
        "draft sent",
    ):
        assert moved.get(kind, 0) > 0, (kind, moved)

    # Every per-entity command still works on what the simulator left.
    out = io.StringIO()
    call_command("seed_invoices", "--seed", "3", "--now", end.isoformat(), stdout=out)
    late = value(
        "SELECT count(*) FROM core_invoice WHERE period_start < %s AND created_at > %s",
        [(end - timedelta(days=1)).date(), end],
    )
    assert late == 0  # seed_invoices found no month the simulator had missed
    for command in (
        ["seed_products", "--per-tenant", "2"],
        ["seed_customers", "--per-tenant", "3"],
        ["seed_orders", "--per-customer", "0.2"],
        ["seed_events", "--per-customer", "2"],
        ["seed_subscriptions", "--share", "0.1"],
        ["seed_invoices"],
    ):
        call_command(*command, "--seed", "4", stdout=io.StringIO())
    assert invariant_violations(datetime.now(UTC)) == {}


def test_the_periods_a_simulation_bills_are_the_anchored_ones():
    reseed(now=datetime.now(UTC) - timedelta(days=70))
    simulate(seed=2, rate=0, count=2500, speedup=60 * 86400 / (2500 * 0.05))
    checked = 0
    for ref, invoiced in stored_subscriptions(None, batch=100_000):
        if ref.billing_starts is None:
            assert not invoiced
            continue
        anchored = {billing_period(ref.billing_starts, m)[0].date() for m in range(12)}
        assert invoiced <= anchored, ref
        checked += len(invoiced)
    assert checked > 50


def commit_order_of_xids(slot: str) -> list[int]:
    return [
        int(xid)
        for (xid,) in rows(
            "SELECT xid::text FROM pg_logical_slot_peek_changes(%s, NULL, NULL) "
            "WHERE data LIKE 'COMMIT%%'",
            [slot],
        )
    ]


def test_workers_interleave_and_commit_out_of_start_order():
    reseed()
    value("SELECT lsn FROM pg_create_logical_replication_slot('sim_order', 'test_decoding')")
    try:
        result = simulate(seed=7, rate=0, count=1500, workers=4)
        xids = commit_order_of_xids("sim_order")
    finally:
        value("SELECT pg_drop_replication_slot('sim_order')")
    assert sum(result.actions.values()) + result.abandoned == 1500
    assert len(xids) > 500  # actions that wrote nothing leave no transaction
    assert xids != sorted(xids)  # a transaction that began later committed earlier
    assert invariant_violations(result.simulated_until, one_writer=False) == {}


def test_two_simulate_processes_with_the_same_seed_share_one_database():
    """Identical draws on identical data: every conflict must be retried, not fatal. The two
    start in step (a lock on every table holds their first writes until both wait), or on a
    loaded machine one could be done before the other began, and nothing would conflict."""
    reseed()
    holder = psycopg2.connect(**session_params(connection.get_connection_params()))
    try:
        with holder.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {', '.join(TABLE_ROWS)} IN EXCLUSIVE MODE")  # reads go on
        environment = {"DATABASE_LOCK_TIMEOUT": "120s"}
        runs = [
            manage_py("simulate", "--rate", "0", "--count", "800", "--seed", "5",
                      "--workers", "2", env=environment)
            for _ in range(2)
        ]  # fmt: skip
        wait_for(
            lambda: (
                value(
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                    "AND pid <> pg_backend_pid()"
                )
                >= 4
            ),  # both processes' two workers
            seconds=120,
            what="both processes waiting on their first write",
        )
    finally:
        holder.rollback()
        holder.close()
    outputs = [run.communicate(timeout=180) for run in runs]
    for run, (out, err) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, err
        assert "Traceback" not in err
        assert "800 actions" in out or "actions tried again" in out
    assert any("tried again after a conflict" in out for out, _ in outputs)
    assert invariant_violations(datetime.now(UTC), one_writer=False) == {}


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
        reports = verify_capture(connection.get_connection_params(), location(tmp_path))
    finally:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_drop_replication_slot('sim_tail')")
    assert all(report.same for report in reports.values()), reports


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
        (["--rate", "-1"], "--rate: must be at least 0.0, not -1"),
        (["--count", "0"], "--count: must be at least 1, not 0"),
        (["--duration", "0"], "--duration: must be more than 0, not 0"),
        (["--speedup", "0"], "--speedup: must be more than 0, not 0"),
        (["--workers", "0"], "--workers: must be between 1 and 64, not 0"),
        (["--tenant", "nobody"], "no tenant 'nobody'"),
    ],
)
def test_bad_input_is_a_clear_error(args, message):
    with pytest.raises(CommandError, match=message):
        call_command("simulate", *args, stdout=io.StringIO())


def test_no_data_or_data_from_the_future_is_one_line():
    with pytest.raises(CommandError, match=r"no data to simulate on: run `bin/manage seed_all`"):
        call_command("simulate", "--count", "1", stdout=io.StringIO())
    reseed()
    before = digest()
    value(
        "UPDATE core_order SET updated_at = now() + interval '2 days' WHERE id = "
        "(SELECT id FROM core_order LIMIT 1) RETURNING 1"
    )
    future = digest()
    with pytest.raises(CommandError, match="after the real time now") as error:
        call_command("simulate", "--count", "5", "--rate", "0", stdout=io.StringIO())
    assert "\n" not in str(error.value)
    assert digest() == future != before


@pytest.mark.parametrize("workers", ["1", "2"])
def test_sigterm_finishes_the_current_transactions_and_prints_totals(workers):
    reseed()
    events = value("SELECT count(*) FROM core_event")
    run = manage("simulate", "--rate", "40", "--duration", "60", "--workers", workers)
    wait_for(lambda: events_grow_past(events), what="simulate")
    run.send_signal(signal.SIGTERM)
    out, err = run.communicate(timeout=30)
    assert run.returncode == 0, err
    assert "actions," in out and "row changes/s" in out
    assert "Traceback" not in err


def backends_of_others() -> int:
    return value(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = "
        "current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
    )


def test_a_lost_connection_is_one_line_then_a_reconnect():
    reseed()
    events = value("SELECT count(*) FROM core_event")
    run = manage("simulate", "--rate", "50", "--duration", "8", "--seed", "1")
    wait_for(lambda: events_grow_past(events), what="simulate")
    assert backends_of_others() == 1
    out, err = run.communicate(timeout=60)
    assert run.returncode == 0, err
    assert "Traceback" not in err
    assert err.count("lost the connection to PostgreSQL") == 1, err
    assert "reconnected to PostgreSQL" in err
    assert "1 reconnections" in out and "row changes/s" in out


@pytest.mark.slow
def test_a_postgresql_restart_under_two_workers_is_survived():
    reseed()
    events = value("SELECT count(*) FROM core_event")
    run = manage("simulate", "--rate", "60", "--duration", "12", "--workers", "2")
    wait_for(lambda: events_grow_past(events), what="simulate")
    before = value("SELECT count(*) FROM core_event")
    restart_server()
    _, err = run.communicate(timeout=90)
    assert run.returncode == 0, err
    assert "Traceback" not in err
    assert "lost the connection to PostgreSQL" in err and "reconnected" in err
    assert value("SELECT count(*) FROM core_event") > before  # it went on after the restart
    assert invariant_violations(datetime.now(UTC), one_writer=False) == {}


def test_simulated_time_behind_the_clock_says_why():
    from core.management.commands.simulate import simulated_time

    now = datetime.now(UTC)
    line = simulated_time(now - timedelta(minutes=11), now - timedelta(minutes=12), 1.0)
    assert ", 11 min behind the clock: it went on from the newest data (" in line
    assert "at 1x the wall clock, and never passes it" in line
    assert simulated_time(now, now, 1.0) == f"simulated time now {now:%Y-%m-%d %H:%M:%S} UTC"
