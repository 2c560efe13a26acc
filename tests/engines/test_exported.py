"""The SQL lakehouse_export hands over, run for real: glue_job.py under spark-submit, the
spark/*.sql MERGE in Spark, and spark/views.sql over a table of versions; each gives the
tables lakehouse_apply builds, and the source's current state."""

import io
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
from django.core.management import call_command
from django.db import connection
from pyiceberg.catalog.sql import SqlCatalog

from core.lake.spark import iceberg_catalog, s3a_settings, spark_uri
from core.storage import location
from devstack import engines
from tests.engines.conftest import spark_environment
from tests.engines.test_spark_apply import apply, current_state

pytestmark = [pytest.mark.engines, pytest.mark.django_db]


@pytest.fixture(scope="module")
def exported(captures, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("exported")
    call_command(
        "lakehouse_export", str(captures["parquet"]), "--output", str(out), stdout=io.StringIO()
    )
    return out


@pytest.fixture(scope="module")
def reference(captures, tmp_path_factory) -> dict[str, list[tuple]]:
    """lakehouse_apply's tables (equal to the source: tests/engines/test_spark_apply.py)."""
    warehouse = tmp_path_factory.mktemp("reference") / "warehouse"
    apply(captures["parquet"], warehouse, "iceberg", "python")
    return current_state(warehouse)


def catalog_settings(name: str, folder: Path) -> dict[str, str]:
    """An Iceberg JDBC catalog in a SQLite file of its own (Glue's catalog, here)."""
    folder.mkdir(parents=True, exist_ok=True)
    return {
        f"spark.sql.catalog.{name}": "org.apache.iceberg.spark.SparkCatalog",
        f"spark.sql.catalog.{name}.type": "jdbc",
        f"spark.sql.catalog.{name}.uri": f"jdbc:sqlite:{folder / 'catalog.db'}",
        f"spark.sql.catalog.{name}.warehouse": f"file://{folder}",
        f"spark.sql.catalog.{name}.jdbc.schema-version": "V1",
    }


def tables_of(name: str, folder: Path, namespace: str) -> dict[str, list[tuple]]:
    """Every table of a catalog the exported SQL wrote, read back by pyiceberg."""
    catalog = SqlCatalog(
        name, uri=f"sqlite:///{folder / 'catalog.db'}", warehouse=f"file://{folder}"
    )
    duck = duckdb.connect()
    found = {}
    for _, table in catalog.list_tables(namespace):
        duck.register("rows", catalog.load_table((namespace, table)).scan().to_arrow())
        found[table] = duck.sql("SELECT COLUMNS(*)::VARCHAR FROM rows ORDER BY id").fetchall()
        duck.unregister("rows")
    return found


def without_load_time(rows: list[tuple]) -> list[tuple]:
    """Rows without the DMS timestamp: each capture's full load has its own moment."""
    return [row[:-3] + row[-2:] for row in rows]


def test_the_glue_job_under_spark_submit_builds_lakehouse_applys_tables(
    captures, exported, reference, tmp_path
):
    """The DMS folder on the local S3 store, read through s3a:// as Glue reads S3 (the same
    shop, captured by a slot of its own)."""
    glue = tmp_path / "glue"
    settings = {
        "spark.sql.extensions": "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
        **catalog_settings("glue_catalog", glue),
    }
    folder = spark_uri(f"{captures['s3']}/public")
    store = s3a_settings(location(captures["s3"]).settings)
    settings |= {f"spark.hadoop.{key}": value for key, value in store.items()}
    command = [
        str(Path(sys.executable).parent / "spark-submit"),
        "--master", "local[2]",
        "--jars", ",".join(str(path) for path in engines.jar_paths()),
        *[part for key, value in settings.items() for part in ("--conf", f"{key}={value}")],
        str(exported / "glue_job.py"),
        "--dms_folder", folder,
        "--database", "lakehouse",
        "--JOB_NAME", "lakehouse-test",  # as Glue adds it
    ]  # fmt: skip
    environment = {
        **spark_environment(),
        "TZ": "America/New_York",  # the job sets its session's zone itself
    }
    finished = subprocess.run(command, env=environment, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-3000:]
    built = tables_of("glue_catalog", glue, "lakehouse")
    assert sorted(built) == sorted(reference)
    for name, rows in reference.items():
        assert without_load_time(built[name]) == without_load_time(rows), name


def test_the_spark_merge_files_build_lakehouse_applys_tables(
    spark, captures, exported, reference, tmp_path
):
    session = spark.newSession()
    session.conf.set("spark.sql.session.timeZone", "America/New_York")  # instants stay instants
    folder = tmp_path / "spark-sql"
    for key, value in catalog_settings("glue_catalog", folder).items():
        session.conf.set(key, value)
    session.sql("CREATE NAMESPACE glue_catalog.lakehouse")
    for name in reference:
        create, merge = (exported / "spark" / f"{name}.sql").read_text().split(";\n\n")
        session.sql(create)
        changes = session.read.option("recursiveFileLookup", "true").parquet(
            str(captures["parquet"] / "public" / name)
        )
        changes.createOrReplaceTempView(f"changes_{name}")
        session.sql(merge.rstrip(";\n"))
    built = tables_of("glue_catalog", folder, "lakehouse")
    for name, rows in reference.items():
        assert built[name] == rows, name


def source_keys(table: str) -> list[str]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id::text FROM {table}")
        return sorted(row[0] for row in cursor.fetchall())


def run_statements(session, path: Path) -> None:
    for statement in path.read_text().split(";\n"):
        if statement.strip():
            session.sql(statement)


VIEWED = ("core_order", "core_event", "core_customer", "core_subscription")


@pytest.mark.parametrize("table_format", ["iceberg", "delta"])
def test_the_spark_views_run_as_written_over_a_table_of_versions(
    spark, captures, tmp_path, table_format
):
    """spark/views.sql (Iceberg, `--catalog` naming the warehouse's catalog) and
    spark/delta_views.sql (Delta, `--warehouse` giving the tables' paths), run as written over
    lakehouse_apply's tables, which hold several versions of a key until lakehouse_maintain:
    the views give the source's rows."""
    warehouse = tmp_path / "warehouse"
    apply(captures["parquet"], warehouse, table_format, "python")
    session = spark.newSession()
    settings = iceberg_catalog(location(warehouse))
    name = settings.pop("name")
    exported = tmp_path / "exported"
    arguments = ["--catalog", name] if table_format == "iceberg" else ["--warehouse", warehouse]
    call_command(
        "lakehouse_export", str(captures["parquet"]), "--output", str(exported),
        *map(str, arguments), stdout=io.StringIO(),
    )  # fmt: skip
    if table_format == "iceberg":
        for key, value in settings.items():
            session.conf.set(f"spark.sql.catalog.{name}.{key}", value)
        session.conf.set(f"spark.sql.catalog.{name}", "org.apache.iceberg.spark.SparkCatalog")
        run_statements(session, exported / "spark" / "views.sql")
        view, stored = f"{name}.lakehouse.{{}}_current", f"{name}.lakehouse.{{}}"
    else:
        run_statements(session, exported / "spark" / "delta_views.sql")
        view, stored = "{}_current", f"delta.`{warehouse}/{{}}`"
    versions = 0
    for table in VIEWED:
        expected = source_keys(table)
        found = session.sql(f"SELECT id FROM {view.format(table)}").collect()
        assert sorted(row[0] for row in found) == expected, table
        versions += session.sql(f"SELECT count(*) FROM {stored.format(table)}").collect()[0][0]
        versions -= len(expected)
    assert versions > 0  # there were older versions and tombstones to leave out
