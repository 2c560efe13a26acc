"""Tables another engine changed after lakehouse_apply built them: Spark deletes three keys
with deletion vectors (Delta) and with merge-on-read position delete files (Iceberg). The
commands read those deletes (lakehouse_query, lakehouse_verify: the three keys missing, no
more), and lakehouse_maintain compacts the table without bringing any of them back."""

import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from core.lake.layout import DELETED
from core.lake.spark import iceberg_catalog
from core.storage import location
from core.verify.lake import verify_lake
from tests.engines.test_spark_apply import apply, current_state, each_table

pytestmark = [pytest.mark.engines, pytest.mark.django_db]

TABLE = "core_order"


def live_keys(warehouse: Path, count: int) -> list[str]:
    """`count` keys whose current version is not a delete."""
    query = f"SELECT id FROM {{name}} WHERE NOT {DELETED} ORDER BY id LIMIT {count}"
    return [row[0] for row in each_table(warehouse, query)[TABLE]]


def keys_in(warehouse: Path) -> set[str]:
    return {row[0] for row in each_table(warehouse, "SELECT id FROM {name}")[TABLE]}


def delete_with_deletion_vectors(spark, warehouse: Path, keys: list[str]) -> None:
    path = f"delta.`{warehouse.resolve() / TABLE}`"
    spark.sql(f"ALTER TABLE {path} SET TBLPROPERTIES ('delta.enableDeletionVectors' = 'true')")
    listed = ", ".join(f"'{key}'" for key in keys)
    spark.sql(f"DELETE FROM {path} WHERE id IN ({listed})")
    log = "".join(path.read_text() for path in (warehouse / TABLE / "_delta_log").glob("*.json"))
    assert '"deletionVector":{' in log, "Spark wrote no deletion vector"


def delete_merge_on_read(spark, warehouse: Path, keys: list[str]) -> None:
    catalog = iceberg_catalog(location(str(warehouse)))
    name = catalog.pop("name")
    prefix = f"spark.sql.catalog.{name}"
    spark.conf.set(prefix, "org.apache.iceberg.spark.SparkCatalog")
    for key, value in catalog.items():
        spark.conf.set(f"{prefix}.{key}", value)
    table = f"{name}.lakehouse.{TABLE}"
    spark.sql(f"ALTER TABLE {table} SET TBLPROPERTIES ('write.delete.mode' = 'merge-on-read')")
    listed = ", ".join(f"'{key}'" for key in keys)
    spark.sql(f"DELETE FROM {table} WHERE id IN ({listed})")
    deletes = spark.sql(f"SELECT count(*) FROM {table}.delete_files").collect()[0][0]
    assert deletes > 0, "Spark wrote no delete file"


def missing_and_extra(database, warehouse: Path) -> dict[str, tuple[set, set]]:
    reports = verify_lake(database, location(str(warehouse)))
    return {
        name: (set(report.table.missing), set(report.table.extra))
        for name, report in reports.items()
        if not report.table.same
    }


@pytest.mark.parametrize(
    ("table_format", "delete"),
    [("delta", delete_with_deletion_vectors), ("iceberg", delete_merge_on_read)],
    ids=["delta-deletion-vectors", "iceberg-position-deletes"],
)
def test_what_another_engine_deleted_stays_deleted_in_every_command(
    spark, capture, database, tmp_path, table_format, delete
):
    warehouse = tmp_path / "warehouse"
    apply(capture, warehouse, table_format, "python")
    keys = live_keys(warehouse, 3)
    assert len(keys) == 3
    delete(spark, warehouse, keys)

    assert keys_in(warehouse).isdisjoint(keys)
    assert missing_and_extra(database, warehouse) == {TABLE: (set(keys), set())}
    out = io.StringIO()
    call_command("lakehouse_query", "--warehouse", str(warehouse), stdout=out)

    call_command(
        "lakehouse_maintain", "--warehouse", str(warehouse), "--tombstone-grace-hours", "0",
        stdout=io.StringIO(),
    )  # fmt: skip
    assert keys_in(warehouse).isdisjoint(keys)  # none brought back
    assert missing_and_extra(database, warehouse) == {TABLE: (set(keys), set())}
    stored = json.dumps(current_state(warehouse)[TABLE])
    assert not any(key in stored for key in keys)


def test_maintenance_refuses_a_table_it_cannot_rewrite_exactly_and_changes_nothing(
    spark, capture, database, tmp_path
):
    warehouse = tmp_path / "warehouse"
    apply(capture, warehouse, "delta", "python")
    spark.sql(
        f"ALTER TABLE delta.`{warehouse.resolve() / TABLE}` SET TBLPROPERTIES ("
        "'delta.columnMapping.mode' = 'name', 'delta.minReaderVersion' = '2', "
        "'delta.minWriterVersion' = '5')"
    )
    logs = {path: path.read_text() for path in warehouse.glob("*/_delta_log/*.json")}
    with pytest.raises(CommandError) as refused:
        call_command("lakehouse_maintain", "--warehouse", str(warehouse), stdout=io.StringIO())
    assert str(refused.value) == (
        "lakehouse_maintain changed nothing: core_order: another engine gave it columnMapping, "
        "which lakehouse_maintain does not write; maintain it with that engine"
    )
    assert {path: path.read_text() for path in warehouse.glob("*/_delta_log/*.json")} == logs
    assert missing_and_extra(database, warehouse) == {}  # still read right
