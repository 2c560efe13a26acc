"""The expected-results manifest: what any correct pipeline must end with, so a team can test a
lakehouse it built itself (its own Glue or Spark job), not ours.

`manifest.json`, kept in the capture folder, holds checkpoints: the source's state at a moment
the capture passes through (after each scenario, and at the end of a capture), per table and
per tenant:

    rows   the number of rows
    hash   order-independent: the exact sum, as a decimal string, of the first 15 hex digits
           of md5(row text) read as an integer
    sums   each money (numeric) column's sum, as PostgreSQL prints it; null with no values

The row text is the row's columns, in the order the checkpoint lists them (`columns`: a
column added later is not in an earlier checkpoint's), each as text and
joined by U+001F (unit separator), NULL as `\\N`: text, numbers, uuids, booleans (`true`,
`false`) and JSON as PostgreSQL prints them; timestamps in UTC as `YYYY-MM-DD HH:MM:SS.ffffff`,
truncated to milliseconds when `timestamp_precision` is `ms` (Parquet captures with
ParquetTimestampInMillisecond). The tenant of a row is `tenant_id`, or `id` for core_tenant.
A pipeline's tables may carry more columns (the DMS timestamp, the change sequence): they are
not hashed. Rows whose `_tombstone` column is true (this project's tombstones) are left out.
"""

import json
from datetime import UTC, datetime

from core.capture.files import is_timestamp, timestamp_unit
from core.capture.record import Capture
from core.capture.target import S3Target
from core.errors import ManifestError
from core.lake.layout import DELETED
from core.source.catalog import SCHEMA, Column, Table, read_schema
from core.source.quoting import quoted
from core.storage import Location
from core.verify.engine import DUCK_RANGE, POSTGRES_RANGE, postgres_text, row_hash

MANIFEST_FILE = "manifest.json"
FORMAT = "lakehouse-manifest/1"


def money_columns(table: Table) -> list[str]:
    return [column.name for column in table.columns if column.type.startswith("numeric")]


def tenant_of(table: Table) -> str:
    return "id" if table.name == "core_tenant" else "tenant_id"


def source_state(cursor, table: Table, target: S3Target) -> dict[str, dict]:
    """Per tenant: rows, hash and money sums of the live table."""
    texts = [postgres_text(column, target) for column in table.columns]
    money = money_columns(table)
    cursor.execute(
        f"SELECT tenant, count(*), {POSTGRES_RANGE}{sums(money, '::text')} FROM "
        f"(SELECT {tenant_of(table)}::text AS tenant, {row_hash(texts)} AS h"
        f"{picked(money)} FROM {SCHEMA}.{quoted(table.name)}) t GROUP BY tenant"
    )
    return {row[0]: entry(row[1:], money) for row in cursor.fetchall()}


def sums(money: list[str], cast: str) -> str:
    return "".join(f", sum({quoted(name)}){cast}" for name in money)


def picked(money: list[str]) -> str:
    return "".join(f", {quoted(name)}" for name in money)


def entry(values, money: list[str]) -> dict:
    rows, digest, *totals = values
    return {"rows": rows, "hash": str(digest), "sums": dict(zip(money, totals, strict=True))}


def duck_text(column: Column, timestamp_precision: str) -> str:
    """DuckDB SQL for a column of a pipeline's table as the row text's form of it, whatever
    type the pipeline gave it (a timestamp may be a TIMESTAMP, TIMESTAMPTZ or a string)."""
    name = quoted(column.name)
    if not is_timestamp(column.type):
        return f"CAST({name} AS VARCHAR)"
    moment = f"CAST({name} AS TIMESTAMP)"
    if timestamp_precision == "ms":
        moment = f"date_trunc('millisecond', {moment})"
    return f"strftime({moment}, '%Y-%m-%d %H:%M:%S.%f')"


def lake_state(duck, relation: str, table: Table, timestamp_precision: str) -> dict[str, dict]:
    """The same numbers over a DuckDB relation holding the table's rows (extra columns are
    ignored; a missing one is a ManifestError). The connection's TimeZone must be UTC."""
    present = set(duck.sql(f"SELECT * FROM {relation} LIMIT 0").columns)
    missing = [column.name for column in table.columns if column.name not in present]
    if missing:
        raise ManifestError(f"{table.name} lacks the columns {missing}")
    texts = [duck_text(column, timestamp_precision) for column in table.columns]
    money = money_columns(table)
    alive = f"WHERE NOT coalesce({DELETED}, false)" if DELETED in present else ""
    rows = duck.execute(
        f"SELECT tenant, count(*), {DUCK_RANGE}{sums(money, '::VARCHAR')} FROM "
        f"(SELECT CAST({quoted(tenant_of(table))} AS VARCHAR) AS tenant, {row_hash(texts)} AS h"
        f"{picked(money)} FROM {relation} {alive}) GROUP BY tenant"
    ).fetchall()
    return {row[0]: entry(row[1:], money) for row in rows}


def checkpoint(cursor, tables: dict[str, Table], target: S3Target, label: str) -> dict:
    cursor.execute("SELECT pg_current_wal_lsn()::text")
    (lsn,) = cursor.fetchone()
    return {
        "label": label,
        "lsn": lsn,
        "taken_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
        # The columns hashed, as they were then (a column added later is not in them).
        "columns": {
            name: [[column.name, column.type] for column in table.columns]
            for name, table in tables.items()
        },
        "tables": {name: source_state(cursor, table, target) for name, table in tables.items()},
    }


def write_checkpoint(folder: Location, cursor, label: str) -> dict:
    """Append a checkpoint of the source as it is now (its tables as they are now) to the
    capture's manifest."""
    capture = Capture.load(folder)
    if capture is None:
        raise ManifestError(
            f"{folder} is not a capture (no capture.json): run cdc_tail --output {folder} first"
        )
    path = folder.uri(MANIFEST_FILE)
    found = folder.read(MANIFEST_FILE)
    manifest = parse_manifest(found[0], path) if found else None
    if manifest is not None and manifest["capture"] != capture.identity:
        raise ManifestError(
            f"{path} belongs to capture {manifest['capture']}, not {capture.identity}: move it away"
        )
    manifest = manifest or {
        "format": FORMAT,
        "capture": capture.identity,
        "timestamp_precision": timestamp_unit(capture.target),
        "tables": {},
        "checkpoints": [],
    }
    tables = {table.name: table for table in read_schema(cursor)}
    taken = checkpoint(cursor, tables, capture.target, label)
    for name, table in tables.items():
        manifest["tables"][name] = {
            "columns": [[column.name, column.type] for column in table.columns],
            "money": money_columns(table),
        }
    manifest["checkpoints"].append(taken)
    # Replaces exactly the version read: two writers cannot both append.
    folder.write_if(
        MANIFEST_FILE, (json.dumps(manifest, indent=1) + "\n").encode(), found[1] if found else None
    )
    return taken


def read_manifest(folder: Location, name: str = MANIFEST_FILE) -> dict:
    found = folder.read(name)
    if found is None:
        raise ManifestError(f"no manifest at {folder.uri(name)}: give a capture's manifest.json")
    return parse_manifest(found[0], folder.uri(name))


def parse_manifest(data: bytes, path: str) -> dict:
    try:
        manifest = json.loads(data)
    except ValueError as error:
        raise ManifestError(f"{path} is not readable as a manifest: {error}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise ManifestError(f"{path} is not a {FORMAT} manifest")
    return manifest


def checkpoint_tables(checkpoint: dict) -> dict[str, Table]:
    """The tables as the checkpoint hashed them."""
    return {
        name: Table(name, [Column(c, kind) for c, kind in columns], ["id"])
        for name, columns in checkpoint["columns"].items()
    }


def pick_checkpoint(manifest: dict, label: str | None) -> dict:
    checkpoints = manifest["checkpoints"]
    if not checkpoints:
        raise ManifestError("the manifest has no checkpoint yet")
    if label is None:
        return checkpoints[-1]
    for found in reversed(checkpoints):
        if found["label"] == label:
            return found
    labels = ", ".join(dict.fromkeys(found["label"] for found in checkpoints))
    raise ManifestError(f"no checkpoint {label!r} in the manifest: it has {labels}")


def differences(expected: dict[str, dict], found: dict[str, dict]) -> dict[str, list[str]]:
    """Per tenant, what differs: rows, hash, a money column's sum."""
    wrong = {}
    for tenant in sorted(set(expected) | set(found)):
        want, got = expected.get(tenant), found.get(tenant)
        if want is None or got is None:
            wrong[tenant] = [
                f"rows {got['rows'] if got else 0}, expected {want['rows'] if want else 0}"
            ]
            continue
        what = []
        if want["rows"] != got["rows"]:
            what.append(f"rows {got['rows']}, expected {want['rows']}")
        elif want["hash"] != got["hash"]:
            what.append("same rows, different values")
        what += [
            f"sum({column}) {got['sums'].get(column)}, expected {total}"
            for column, total in want["sums"].items()
            if got["sums"].get(column) != total
        ]
        if what:
            wrong[tenant] = what
    return wrong
