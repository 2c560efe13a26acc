"""setup_replication: creates what is missing, changes nothing the second time, drops cleanly."""

import io

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

pytestmark = pytest.mark.django_db(transaction=True)


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("setup_replication", *args, stdout=out)
    return out.getvalue()


def value(sql: str, params=None):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


@pytest.fixture(autouse=True)
def clean_up():
    yield
    run("--drop", "--slot", "lake_slot", "--drop-publication")
    run("--drop-publication", "--publication", "cdc_pub")


def test_first_run_creates_second_run_changes_nothing():
    first = run("--replica-identity", "full", "--slot", "lake_slot")
    assert "created publication dms_publication FOR ALL TABLES" in first
    assert "set replica identity full on core_event" in first
    assert "created logical slot lake_slot (test_decoding)" in first
    assert value("SELECT puballtables FROM pg_publication WHERE pubname = 'dms_publication'") == [
        (True,)
    ]
    assert value(
        "SELECT DISTINCT relreplident FROM pg_class WHERE relname LIKE 'core\\_%%' "
        "AND relkind = 'r'"
    ) == [("f",)]
    lsn_before = value("SELECT confirmed_flush_lsn FROM pg_replication_slots")

    second = run("--replica-identity", "full", "--slot", "lake_slot")
    assert "nothing to change" in second
    assert "already there: publication dms_publication" in second
    assert "already there: logical slot lake_slot (test_decoding)" in second
    assert value("SELECT confirmed_flush_lsn FROM pg_replication_slots") == lsn_before


def test_a_slot_with_another_plugin_is_a_clear_error():
    run("--slot", "lake_slot", "--plugin", "pgoutput")
    with pytest.raises(CommandError, match="slot lake_slot exists with plugin pgoutput"):
        run("--slot", "lake_slot", "--plugin", "test_decoding")


def identities() -> dict[str, str]:
    return dict(
        value(
            "SELECT relname, relreplident FROM pg_class WHERE relname LIKE 'core\\_%%' "
            "AND relkind = 'r'"
        )
    )


def test_auto_gives_full_to_tables_with_lob_columns_and_says_why():
    done = run()
    assert "set replica identity full on core_event (it has LOB columns)" in done
    found = identities()
    assert found.pop("core_event") == "f"
    assert set(found.values()) == {"d"}


def test_dropping_a_slot_drops_that_slot_only():
    run("--slot", "lake_slot")
    run("--slot", "other_slot")
    before = identities()
    dropped = run("--drop", "--slot", "lake_slot")
    assert dropped.strip() == "dropped slot lake_slot"
    assert value("SELECT slot_name FROM pg_replication_slots") == [("other_slot",)]
    assert value("SELECT count(*) FROM pg_publication WHERE pubname = 'dms_publication'") == [(1,)]
    assert identities() == before
    run("--drop", "--slot", "other_slot")


def test_dropping_the_publication_is_its_own_option():
    run("--replica-identity", "full", "--publication", "cdc_pub")
    dropped = run("--drop-publication", "--publication", "cdc_pub")
    assert "dropped publication cdc_pub" in dropped
    assert value("SELECT count(*) FROM pg_publication WHERE pubname = 'cdc_pub'") == [(0,)]
    assert set(identities().values()) == {"d"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--drop"], "--drop needs --slot NAME"),
        (["--slot", "Lake-Slot"], "slot name 'Lake-Slot'"),
        (["--publication", "pub; DROP TABLE core_order"], "publication name"),
    ],
)
def test_bad_input_is_one_line_and_changes_nothing(args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)
    assert value("SELECT count(*) FROM pg_publication") == [(0,)]
    assert value("SELECT count(*) FROM pg_replication_slots") == [(0,)]
