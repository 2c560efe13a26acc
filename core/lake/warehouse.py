"""A warehouse: a folder or s3:// prefix of lakehouse tables in one format, with the record
(lakehouse.json) of the capture it is built from, and the stores of its tables."""

import json
from dataclasses import dataclass

from core.capture.reader import capture_table
from core.capture.record import Capture
from core.capture.target import S3Target
from core.errors import LakeError
from core.lake.layout import LAYOUT
from core.lake.store import TableFormat
from core.source.catalog import Table
from core.storage import Location, location

WAREHOUSE_RECORD = "lakehouse.json"  # the capture a warehouse is built from: settings, schema


# The stores are imported where they are used: each imports this module's bookkeeping keys,
# and only the format in use should pay for importing its engine (pyiceberg is slow to load).


def warehouse_format(warehouse: Location) -> TableFormat | None:
    """The format of the tables a warehouse holds, if any."""
    found = warehouse.read_json(WAREHOUSE_RECORD)
    if found is not None:
        return TableFormat(found[0]["format"])
    if not warehouse.is_local:
        return None  # an s3:// warehouse of ours has its record
    from core.lake.iceberg import CATALOG_FILE

    path = warehouse.path
    if (path / CATALOG_FILE).exists():
        return TableFormat.ICEBERG
    if path.is_dir() and any((child / "_delta_log").exists() for child in path.iterdir()):
        return TableFormat.DELTA
    return None


def open_stores(warehouse: Location, table_format: TableFormat):
    """A function from (table name, lake schema) to that table's store."""
    warehouse.check()
    found = warehouse_format(warehouse)
    if found is not None and found != table_format:
        raise LakeError(
            f"{warehouse} holds {found} tables: use --table-format {found}, or another --warehouse"
        )
    if table_format == TableFormat.DELTA:
        from core.lake.delta import DeltaStore

        s3 = None if warehouse.is_local else warehouse.settings
        return lambda name, schema: DeltaStore(warehouse.uri(name), schema, s3)
    from core.lake.iceberg import iceberg_stores

    return iceberg_stores(warehouse)


@dataclass(frozen=True)
class Warehouse:
    """What a warehouse knows of itself: its format, and the capture it is built from."""

    location: Location
    table_format: TableFormat
    capture_id: str
    source: Location | None  # where the capture was read by the last apply
    target: S3Target
    tables: dict[str, Table]


def write_warehouse_record(
    warehouse: Location,
    table_format: TableFormat,
    capture: Capture,
    capture_id: str,
    source: Location,
) -> None:
    """Record the capture the warehouse is built from, where it was read, and its schema (the
    newest: a column added during the capture is added to the tables)."""
    found = warehouse.read_json(WAREHOUSE_RECORD)
    if found is not None:
        check_layout(warehouse, found[0])
        if found[0]["tables"] == capture.tables and found[0].get("source") == source.uri():
            return
    data = {
        "format": str(table_format),
        "layout": LAYOUT,
        "capture": capture_id,
        "source": source.uri(),
        "s3_settings": capture.target.s3_settings(),
        "tables": capture.tables,
    }
    warehouse.write(WAREHOUSE_RECORD, (json.dumps(data, indent=2) + "\n").encode())


def check_layout(warehouse: Location, record: dict) -> None:
    if record.get("layout", 1) != LAYOUT:
        raise LakeError(
            f"{warehouse} was built by an older lakehouse_apply (layout {record.get('layout', 1)}"
            f", this one writes {LAYOUT}): rebuild it from its capture into a new --warehouse "
            "(or delete it first)"
        )


def open_warehouse(warehouse: Location) -> Warehouse:
    warehouse.check()
    found = warehouse.read_json(WAREHOUSE_RECORD)
    if found is None:
        raise LakeError(
            f"{warehouse} holds no lakehouse tables (no {WAREHOUSE_RECORD}): run lakehouse_apply"
        )
    data = found[0]
    check_layout(warehouse, data)
    return Warehouse(
        location=warehouse,
        table_format=TableFormat(data["format"]),
        capture_id=data["capture"],
        source=location(data["source"]) if data.get("source") else None,
        target=S3Target.from_s3_settings(data["s3_settings"]),
        tables={name: capture_table(name, table) for name, table in data["tables"].items()},
    )
