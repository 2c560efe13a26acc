"""check_replication on a real server: it passes when ready, and each problem, made on
purpose, gives the right verdict and fix."""

import io
import json
import secrets
from contextlib import contextmanager

import psycopg2
import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from core.replication.checks import FAIL, PASS, WARN, long_transactions, run_checks
from core.replication.setup import drop_publication, setup_replication

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def ready():
    """The state the quick start leaves: publication created, identities as setup gives them."""
    with connection.cursor() as cursor:
        setup_replication(cursor, publication="dms_publication")
    yield
    with connection.cursor() as cursor:
        drop_publication(cursor, publication="dms_publication")


def checks(raw=None, *, lob_max_kb: int = 32) -> dict:
    connection.ensure_connection()
    results = run_checks(
        raw or connection.connection, publication="dms_publication", lob_max_kb=lob_max_kb
    )
    return {check.name: check for check in results}


def execute(sql: str, params=None) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def test_a_ready_server_passes_every_check(ready):
    results = checks()
    assert {name: check.status for name, check in results.items() if check.status != PASS} == {}
    assert "test_decoding plugin" in results
    assert "pgoutput plugin" in results


def test_command_prints_a_table_and_json_and_exits_0_when_nothing_fails(ready):
    out = io.StringIO()
    call_command("check_replication", stdout=out)
    assert "0 failed" in out.getvalue()
    out = io.StringIO()
    call_command("check_replication", "--format", "json", stdout=out)
    parsed = json.loads(out.getvalue())
    assert {"name", "status", "value", "fix"} <= set(parsed[0])


def test_a_table_without_primary_key_fails_and_exits_1(ready):
    execute("CREATE TABLE core_audit_note (note varchar(100))")
    try:
        result = checks()["primary keys"]
        assert result.status == FAIL
        assert "core_audit_note" in result.value
        assert "ALTER TABLE core_audit_note ADD PRIMARY KEY" in result.fix
        with pytest.raises(CommandError, match="1 checks failed") as failure:
            call_command("check_replication", stdout=io.StringIO())
        assert failure.value.returncode == 1  # manage.py exits with it
    finally:
        execute("DROP TABLE core_audit_note")


def test_a_too_small_wal_sender_timeout_fails_with_the_fix(ready):
    execute("SET wal_sender_timeout = '5s'")
    try:
        result = checks()["wal_sender_timeout"]
    finally:
        execute("RESET wal_sender_timeout")
    assert result.status == FAIL
    assert result.value == "5000 ms"
    assert "wal_sender_timeout = 60s" in result.fix


def test_an_inactive_slot_holding_wal_warns_with_its_size(ready):
    execute("SELECT pg_create_logical_replication_slot('forgotten_slot', 'test_decoding')")
    try:
        execute(
            "CREATE TABLE wal_filler AS SELECT g, md5(g::text) FROM generate_series(1, 20000) g"
        )
        execute("DROP TABLE wal_filler")
        result = checks()["slot forgotten_slot"]
    finally:
        execute("SELECT pg_drop_replication_slot('forgotten_slot')")
    assert result.status == WARN
    assert "inactive (test_decoding), retains" in result.value
    assert "MB" in result.value or "KB" in result.value
    assert "pg_drop_replication_slot('forgotten_slot')" in result.fix


def test_a_missing_publication_warns_with_the_sql_to_create_it():
    result = checks()["publication"]
    assert result.status == WARN
    assert "dms_publication missing" in result.value
    assert 'CREATE PUBLICATION "dms_publication" FOR ALL TABLES;' in result.fix


def test_replica_identity_nothing_fails(ready):
    execute("ALTER TABLE core_invoice REPLICA IDENTITY NOTHING")
    try:
        result = checks()["replica identity"]
    finally:
        execute("ALTER TABLE core_invoice REPLICA IDENTITY DEFAULT")
    assert result.status == FAIL
    assert "core_invoice=nothing" in result.value
    assert "ALTER TABLE core_invoice REPLICA IDENTITY DEFAULT;" in result.fix


def test_lob_values_longer_than_lob_max_size_fail(ready):
    from tests.factories import EventFactory

    EventFactory(properties={"note": "x" * 3000})
    assert checks(lob_max_kb=32)["LOB core_event.properties"].status == PASS
    result = checks(lob_max_kb=2)["LOB core_event.properties"]
    assert result.status == FAIL
    assert "raise LobMaxSize to 3 KB" in result.fix


@contextmanager
def unprivileged_connection():
    """A real login without REPLICATION and without the right to read others' activity."""
    name, password = f"reader_{secrets.token_hex(4)}", secrets.token_urlsafe(16)
    execute(f"CREATE ROLE {name} LOGIN PASSWORD %s", [password])
    execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {name}")
    settings = connection.settings_dict
    raw = psycopg2.connect(
        host=settings["HOST"],
        port=settings["PORT"],
        dbname=settings["NAME"],
        user=name,
        password=password,
    )
    raw.autocommit = True
    try:
        yield name, raw
    finally:
        raw.close()
        execute(f"REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {name}")
        execute(f"DROP ROLE {name}")


def test_a_user_without_replication_fails_and_limited_rights_only_warn(ready):
    with unprivileged_connection() as (name, raw):
        results = checks(raw)
    rights = results["replication rights"]
    assert rights.status == FAIL
    assert rights.value == f"{name}: no REPLICATION"
    assert f'ALTER ROLE "{name}" WITH REPLICATION;' in rights.fix
    assert f'GRANT rds_replication TO "{name}";' in rights.fix
    assert results["test_decoding plugin"].status == FAIL
    assert results["long-running transactions"].status == WARN
    assert "only this user's sessions" in results["long-running transactions"].value
    assert results["wal_level"].status == PASS  # the rest still ran


def test_a_long_running_transaction_warns(monkeypatch):
    other = psycopg2.connect(**connection.get_connection_params())
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT txid_current()")
            cursor.execute("SELECT 1")
        execute("SELECT 1")
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE xact_start IS NOT NULL "
                "AND pid <> pg_backend_pid()"
            )
            assert cursor.fetchone()[0] >= 1
        monkeypatch.setattr("core.replication.checks.LONG_TRANSACTION_MINUTES", 0)
        # This check alone: a slot cannot be made while the transaction runs, so the plugin
        # checks would each wait out their 10 s timeout.
        monkeypatch.setattr("core.replication.checks.CHECKS", [long_transactions])
        result = checks()["long-running transactions"]
    finally:
        other.rollback()
        other.close()
    assert result.status == WARN
    assert "pg_terminate_backend" in result.fix
