"""The Athena forms lakehouse_export writes, run by Trino (Athena engine v3 is Trino) over
Iceberg tables on S3 (the local store) in the shared PostgreSQL catalog: the views give the
source's rows over lakehouse_apply's versions, and the MERGE builds lakehouse_apply's tables.
Athena's CREATE TABLE is Hive DDL, which Trino does not take: the same definition is
rendered for Trino instead."""

import io
import uuid
from collections.abc import Iterator

import duckdb
import pyarrow as pa
import pytest
import sqlglot
from django.core.management import call_command
from django.db import connection

from core.capture.reader import open_capture, read_file
from core.lake.export import create_definition
from core.lake.iceberg import iceberg_schema, open_catalog
from core.lake.spark import iceberg_catalog
from core.storage import location
from tests.engines.test_spark_apply import apply, current_state
from tests.engines.trino import TrinoServer

pytestmark = [pytest.mark.engines, pytest.mark.django_db]


@pytest.fixture(scope="module")
def warehouse(captures, s3_store) -> str:
    url = f"s3://lakehouse/trino-{uuid.uuid4().hex[:8]}/ice"
    apply(captures["parquet"], url, "iceberg", "python")
    return url


@pytest.fixture(scope="module")
def trino(warehouse, tmp_path_factory) -> Iterator[TrinoServer]:
    settings = location(warehouse).settings
    spark_catalog = iceberg_catalog(location(warehouse))  # the same catalog, as Spark reaches it
    catalog = {
        "connector.name": "iceberg",
        "iceberg.catalog.type": "jdbc",
        "iceberg.jdbc-catalog.catalog-name": spark_catalog["name"],
        "iceberg.jdbc-catalog.driver-class": "org.postgresql.Driver",
        "iceberg.jdbc-catalog.connection-url": spark_catalog["uri"],
        "iceberg.jdbc-catalog.connection-user": spark_catalog["jdbc.user"],
        "iceberg.jdbc-catalog.default-warehouse-dir": warehouse,
        "fs.native-s3.enabled": "true",
        "s3.endpoint": settings.endpoint_url,
        "s3.region": settings.region,
        "s3.path-style-access": "true",
        "s3.aws-access-key": settings.access_key_id,
        "s3.aws-secret-key": settings.secret_access_key,
    }
    if spark_catalog["jdbc.password"]:
        catalog["iceberg.jdbc-catalog.connection-password"] = spark_catalog["jdbc.password"]
    server = TrinoServer(tmp_path_factory.mktemp("trino"), {"iceberg": catalog})
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def exported(captures, tmp_path_factory):
    out = tmp_path_factory.mktemp("exported-athena")
    call_command(
        "lakehouse_export", str(captures["parquet"]), "--output", str(out), stdout=io.StringIO()
    )
    return out / "athena"


def statements(text: str) -> list[str]:
    return [part.strip().rstrip(";") for part in text.split(";\n") if part.strip()]


def test_the_athena_views_give_the_current_state_of_the_versions(trino, exported, warehouse):
    for statement in statements((exported / "views.sql").read_text()):
        trino.query(statement, "iceberg", "lakehouse")
    older = 0
    with connection.cursor() as cursor:
        for table in ("core_order", "core_event", "core_customer", "core_subscription"):
            cursor.execute(f"SELECT id::text FROM {table} ORDER BY 1")
            expected = [row[0] for row in cursor.fetchall()]
            found = trino.query(
                f"SELECT id FROM {table}_current ORDER BY 1", "iceberg", "lakehouse"
            )
            assert [row[0] for row in found] == expected, table
            [[stored]] = trino.query(f"SELECT count(*) FROM {table}", "iceberg", "lakehouse")
            older += stored - len(expected)
    assert older > 0  # versions and tombstones the views leave out


def test_the_athena_merge_run_by_trino_builds_lakehouse_applys_tables(
    trino, exported, warehouse, captures
):
    capture, tables = open_capture(location(captures["parquet"]))
    catalog = open_catalog(location(warehouse))
    trino.query("CREATE SCHEMA IF NOT EXISTS athena", "iceberg", "lakehouse")
    for name, files in tables.items():
        # Athena's raw_<table> is an external table over the DMS folder; here, the same rows.
        rows = pa.concat_tables(
            [read_file(path, files.table, capture.target) for path in files.ordered]
        )
        rows = rows.cast(iceberg_schema(rows.schema))
        catalog.create_table(("athena", f"raw_{name}"), schema=rows.schema).append(rows)
        create = sqlglot.transpile(
            create_definition(files.table, capture.target, f"athena.{name}"),
            read="duckdb",
            write="trino",
        )[0]
        trino.query(create, "iceberg", "athena")
        merge = statements((exported / f"{name}.sql").read_text())[1]
        assert merge.startswith(f"MERGE INTO lakehouse.{name} AS t")
        trino.query(
            merge.replace(f"INTO lakehouse.{name}", f"INTO athena.{name}", 1), "iceberg", "athena"
        )
    ours = current_state(warehouse)
    duck = duckdb.connect()
    for name in tables:
        duck.register("merged", catalog.load_table(("athena", name)).scan().to_arrow())
        merged = duck.sql("SELECT COLUMNS(*)::VARCHAR FROM merged ORDER BY id").fetchall()
        duck.unregister("merged")
        assert merged == ours[name], name
