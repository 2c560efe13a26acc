"""export_dms: the files parse (a real HCL parser, JSON) and agree with the live schema."""

import io
import json
import re

import hcl2
import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from core.capture.dms_types import dms_type
from core.capture.target import S3Target
from tests.factories import EventFactory

pytestmark = pytest.mark.django_db


def unquote(value):
    return value.strip('"') if isinstance(value, str) else value


def plain(tree):
    """python-hcl2 keeps string quotes and block markers; drop them for the assertions."""
    if isinstance(tree, dict):
        return {unquote(key): plain(value) for key, value in tree.items() if key != "__is_block__"}
    if isinstance(tree, list):
        return [plain(value) for value in tree]
    return unquote(tree)


def export(tmp_path, *args) -> dict:
    call_command("export_dms", "--output", str(tmp_path), *args, stdout=io.StringIO())
    return {path.name: path for path in tmp_path.iterdir()}


def resources(files) -> dict:
    parsed = plain(hcl2.load(files["dms.tf"].open()))
    found = {}
    for block in parsed["resource"]:
        for kind, named in block.items():
            for name, body in named.items():
                found[f"{kind}.{name}"] = body
    return found


def dms_like(pattern: str, name: str) -> bool:
    """DMS object-locator matching: % any run, _ any one character, [_] a literal underscore."""
    regex = ""
    for token in re.findall(r"\[_\]|%|_|[^%_\[]+|\[", pattern):
        regex += {"[_]": "_", "%": ".*", "_": "."}.get(token, re.escape(token))
    return re.fullmatch(regex, name) is not None


def live_tables() -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename LIKE 'core\\_%%'"
        )
        return {name for (name,) in cursor.fetchall()}


def test_all_files_are_written(tmp_path):
    assert set(export(tmp_path)) == {
        "table-mappings.json",
        "task-settings.json",
        "s3-settings.json",
        "dms.tf",
        "schema.json",
        "schema.md",
    }


def test_selection_rule_matches_exactly_the_core_tables(tmp_path):
    mappings = json.loads(export(tmp_path)["table-mappings.json"].read_text())
    selection = mappings["rules"][0]
    assert selection["rule-type"] == "selection"
    pattern = selection["object-locator"]["table-name"]
    assert pattern == "core[_]%"
    assert all(dms_like(pattern, table) for table in live_tables())
    assert not dms_like(pattern, "coreXtenant")  # a bare _ would have matched this
    assert not dms_like(pattern, "django_session")


def test_transformation_rules_follow_the_options(tmp_path):
    files = export(
        tmp_path,
        "--target-schema",
        "lake",
        "--strip-table-prefix",
        "--exclude-column",
        "core_customer.phone",
    )
    rules = json.loads(files["table-mappings.json"].read_text())["rules"]
    actions = {(rule["rule-target"], rule["rule-action"]) for rule in rules[1:]}
    assert actions == {
        ("column", "add-column"),
        ("schema", "rename"),
        ("table", "remove-prefix"),
        ("column", "remove-column"),
    }
    assert len({rule["rule-id"] for rule in rules}) == len(rules)
    removed = next(rule for rule in rules if rule["rule-action"] == "remove-column")
    assert removed["object-locator"]["column-name"] == "phone"
    assert removed["object-locator"]["table-name"] == "core[_]customer"


def test_terraform_parses_and_configures_the_pipeline(tmp_path):
    found = resources(export(tmp_path, "--slot", "dms_slot"))
    source = found["aws_dms_endpoint.source"]
    settings = source["postgres_settings"][0]
    assert source["engine_name"] == "postgres"
    assert settings["plugin_name"] == "test_decoding"
    assert settings["heartbeat_enable"] is True
    assert settings["capture_ddls"] is False
    assert settings["slot_name"] == "dms_slot"
    assert "password" not in source and source["secrets_manager_arn"] == "${var.source_secret_arn}"
    target = found["aws_dms_s3_endpoint.target"]
    assert target["data_format"] == "parquet"
    assert target["include_op_for_full_load"] is True
    assert target["timestamp_column_name"]
    assert target["date_partition_enabled"] is True
    assert target["parquet_timestamp_in_millisecond"] is True
    # The endpoint says exactly what the one S3 target description (cdc_tail's) says.
    described = S3Target().terraform_arguments()
    written = {  # python-hcl2 leaves escapes in strings as written; HCL's are JSON's
        name: json.loads(f'"{target[name]}"') if isinstance(target[name], str) else target[name]
        for name in described
    }
    assert written == described
    sequence = next(
        rule
        for rule in json.loads(export(tmp_path)["table-mappings.json"].read_text())["rules"]
        if rule["rule-action"] == "add-column"
    )
    assert sequence["expression"] == "$AR_H_CHANGE_SEQ"
    assert sequence["value"] == "ar_h_change_seq"
    assert json.loads((tmp_path / "s3-settings.json").read_text()) == S3Target().s3_settings()
    task = found["aws_dms_replication_task.cdc"]
    assert task["migration_type"] == "full-load-and-cdc"
    assert "table-mappings.json" in task["table_mappings"]
    assert "task-settings.json" in task["replication_task_settings"]


def test_no_secret_in_the_terraform(tmp_path):
    text = export(tmp_path)["dms.tf"].read_text()
    settings = connection.settings_dict
    assert settings["PASSWORD"] not in text
    assert not re.search(r"password\s*=", text)


def test_lob_size_follows_the_data(tmp_path):
    settings = json.loads(export(tmp_path)["task-settings.json"].read_text())["TargetMetadata"]
    assert settings["LimitedSizeLobMode"] is True and settings["FullLobMode"] is False
    assert settings["LobMaxSize"] == 32
    EventFactory(properties={"note": "x" * 40_000})
    settings = json.loads(export(tmp_path)["task-settings.json"].read_text())["TargetMetadata"]
    assert settings["LobMaxSize"] == 128  # twice 40 KB, rounded up to a power of two


def test_schema_matches_the_live_database(tmp_path):
    schema = json.loads(export(tmp_path)["schema.json"].read_text())
    tables = {table["name"]: table for table in schema["tables"]}
    assert set(tables) == live_tables()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name, is_nullable = 'YES' FROM information_schema.columns "
            "WHERE table_schema = 'public' AND table_name LIKE 'core\\_%%'"
        )
        live = {(table, column): nullable for table, column, nullable in cursor.fetchall()}
    exported = {
        (table["name"], column["name"]): column["nullable"]
        for table in schema["tables"]
        for column in table["columns"]
    }
    assert exported == live
    assert all(table["primary_key"] == ["id"] for table in schema["tables"])
    order = {column["name"]: column for column in tables["core_order"]["columns"]}
    assert order["total"]["type"] == "numeric(12,2)"
    assert order["total"]["dms_type"] == "NUMERIC(12,2)"
    assert order["id"]["dms_type"] == "STRING"
    assert order["created_at"]["dms_type"] == "DATETIME"
    event = {column["name"]: column for column in tables["core_event"]["columns"]}
    assert event["properties"]["dms_type"] == "NCLOB"
    assert {index["name"] for index in tables["core_event"]["indexes"]} >= {
        "core_event_pkey",
        "event_tenant_created_idx",
    }
    markdown = export(tmp_path)["schema.md"].read_text()
    assert "| total | numeric(12,2) | no | NUMERIC(12,2) |" in markdown


@pytest.mark.parametrize(
    ("postgres", "dms"),
    [
        ("uuid", "STRING"),
        ("jsonb", "NCLOB"),
        ("numeric(12,2)", "NUMERIC(12,2)"),
        ("timestamp with time zone", "DATETIME"),
        ("boolean", "BOOLEAN"),
        ("character varying(254)", "WSTRING(254)"),
        ("integer", "INT4"),
        ("date", "DATE"),
        ("text", "NCLOB"),
    ],
)
def test_dms_types(postgres, dms):
    assert dms_type(postgres) == dms


def test_a_malformed_or_unknown_column_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match=re.escape("TABLE.COLUMN")):
        call_command("export_dms", "--output", str(tmp_path), "--exclude-column", "phone")
    with pytest.raises(CommandError, match=re.escape("no such column: core_customer.fax")):
        call_command(
            "export_dms", "--output", str(tmp_path), "--exclude-column", "core_customer.fax"
        )
