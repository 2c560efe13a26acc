"""Parsing test_decoding output into typed DMS-style changes."""

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from core.replication.decoding import parse_change, transactions


def test_values_come_out_typed_with_quotes_newlines_nulls_and_exact_scale():
    change = parse_change(
        "table public.core_customer: INSERT: id[uuid]:'87ff3a27-3a44-40d5-afd5-4ec03986f90a' "
        "created_at[timestamp with time zone]:'2026-05-31 06:42:44.946445+00' "
        "city[character varying]:'O''Neil ''s\nplace' birth_date[date]:null "
        "total[numeric]:12.50 is_active[boolean]:false number[integer]:-7 "
        'properties[jsonb]:\'{"q": "it\'\'s", "n": [1, 2]}\''
    )
    assert change.op == "I"
    assert change.table == "core_customer"
    assert change.values == {
        "id": uuid.UUID("87ff3a27-3a44-40d5-afd5-4ec03986f90a"),
        "created_at": datetime(2026, 5, 31, 6, 42, 44, 946445, tzinfo=UTC),
        "city": "O'Neil 's\nplace",
        "birth_date": None,
        "total": Decimal("12.50"),
        "is_active": False,
        "number": -7,
        "properties": {"q": "it's", "n": [1, 2]},
    }
    assert str(change.values["total"]) == "12.50"


def test_updates_deletes_and_transactions():
    rows = [
        ("0/1", "7", "BEGIN 7"),
        (
            "0/2",
            "7",
            "table public.core_order: UPDATE: id[uuid]:'87ff3a27-3a44-40d5-afd5-4ec03986f90a' status[character varying]:'completed'",
        ),
        (
            "0/3",
            "7",
            "table public.core_order: DELETE: id[uuid]:'87ff3a27-3a44-40d5-afd5-4ec03986f90b'",
        ),
        ("0/4", "7", "COMMIT 7 (at 2026-11-26 04:07:24.417358+00)"),
        ("0/5", "8", "BEGIN 8"),
    ]
    found = transactions(rows)
    assert len(found) == 1  # the open transaction 8 is not returned
    assert [change.op for change in found[0].changes] == ["U", "D"]
    assert found[0].changes[1].values == {"id": uuid.UUID("87ff3a27-3a44-40d5-afd5-4ec03986f90b")}
    assert found[0].committed_at == datetime(2026, 11, 26, 4, 7, 24, 417358, tzinfo=UTC)
    assert found[0].commit_lsn == "0/4"
