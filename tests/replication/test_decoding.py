"""Parsing test_decoding output: values stay the text PostgreSQL printed."""

from core.replication.decoding import UNCHANGED, commit_time, parse_change, values_in_order


def test_values_stay_verbatim_text_with_quotes_newlines_and_nulls():
    change = parse_change(
        "table public.core_customer: INSERT: id[uuid]:'87ff3a27-3a44-40d5-afd5-4ec03986f90a' "
        "created_at[timestamp with time zone]:'2026-05-31 06:42:44.9464+00' "
        "city[character varying]:'O''Neil ''s\nplace, new-tuple: x[int]:1' birth_date[date]:null "
        "total[numeric]:12.50 is_active[boolean]:false number[integer]:-7 "
        'properties[jsonb]:\'{"n": 0.1234567890123456789, "p": 1.10, "é": "it\'\'s"}\''
    )
    assert change.op == "I" and change.table == "core_customer" and change.old is None
    assert change.values == {
        "id": "87ff3a27-3a44-40d5-afd5-4ec03986f90a",
        "created_at": "2026-05-31 06:42:44.9464+00",
        "city": "O'Neil 's\nplace, new-tuple: x[int]:1",
        "birth_date": None,
        "total": "12.50",
        "is_active": "false",
        "number": "-7",
        "properties": '{"n": 0.1234567890123456789, "p": 1.10, "é": "it\'s"}',
    }


def test_an_unchanged_toasted_value_comes_from_the_old_row_when_it_is_logged():
    without_old_row = parse_change(
        "table public.core_event: UPDATE: id[uuid]:'a' device[character varying]:'tablet' "
        "properties[jsonb]:unchanged-toast-datum"
    )
    assert without_old_row.values["properties"] is UNCHANGED
    assert without_old_row.unchanged_columns == ["properties"]
    full = parse_change(
        "table public.core_event: UPDATE: old-key: id[uuid]:'a' device[character varying]:'mobile' "
        "properties[jsonb]:'{\"big\": \"x\"}' new-tuple: id[uuid]:'a' "
        "device[character varying]:'tablet' properties[jsonb]:unchanged-toast-datum"
    )
    assert full.values == {"id": "a", "device": "tablet", "properties": '{"big": "x"}'}
    assert full.old["device"] == "mobile"
    assert full.unchanged_columns == []


def test_deletes_and_commits():
    default = parse_change("table public.core_order: DELETE: id[uuid]:'b'")
    assert default.op == "D" and default.values == {"id": "b"}
    nothing = parse_change("table public.core_order: DELETE: (no-tuple-data)")
    assert nothing.values == {}
    assert parse_change("BEGIN 12") is None
    assert commit_time("COMMIT 7 (at 2026-11-26 04:07:24.417358+00)") == (
        "2026-11-26 04:07:24.417358+00"
    )


def test_the_fast_path_reads_a_whole_row_exactly_as_the_general_parser():
    line = (
        "table public.core_event: INSERT: id[uuid]:'a' search_query[character varying]:'it''s '' x' "
        "referrer[character varying]:'' order_id[uuid]:null properties[jsonb]:unchanged-toast-datum "
        "page_url[character varying]:'/p?x=[1]:y ok' device[character varying]:desktop"
    )
    schema, table, op, values = values_in_order(line)
    assert (schema, table, op) == ("public", "core_event", "I")
    assert values == list(parse_change(line).values.values())
    assert values[1:4] == ["it's ' x", "", None] and values[4] is UNCHANGED
    assert values_in_order("table public.core_event: DELETE: id[uuid]:'a'") is None
    assert (
        values_in_order("table public.t: UPDATE: old-key: id[uuid]:'a' new-tuple: id[uuid]:'a'")
        is None
    )
