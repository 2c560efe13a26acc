"""lakehouse_apply's result as SQL for engines beyond this machine, as a MERGE (one row per
key, where lakehouse_apply appends versions and readers take the newest: the same current
state), and views of the current state over either kind of table: written once (here, in
DuckDB's dialect) and rendered by sqlglot for Spark SQL (Iceberg on Glue or EMR) and for
Athena (Hive DDL, Trino DML). The DuckDB forms are run over capture files in the tests, and
their tables compared with lakehouse_apply's; the Spark forms and glue_job.py are run by Spark
and the Athena ones by Trino in tests/engines.

Per table: CREATE TABLE, and a MERGE whose source is the change rows of the files to apply
(a view or an external table over the DMS folder): the last change per key by the change
sequence, then update when matched and newer, insert when not; a delete as a tombstone."""

import sqlglot

from core.capture.target import CHANGE_SEQUENCE_COLUMN, OP_COLUMN, S3Target
from core.lake.layout import DELETED, lake_schema
from core.source.catalog import Table
from core.source.quoting import quoted

# Our name for an engine -> sqlglot's dialect (Athena's: Hive DDL, Trino DML).
DIALECTS = {"duckdb": "duckdb", "spark": "spark", "athena": "athena"}
ARROW_SQL = {
    "string": "VARCHAR",
    "bool": "BOOLEAN",
    "int16": "INTEGER",
    "int32": "INTEGER",
    "int64": "BIGINT",
    "date32[day]": "DATE",
}


def sql_type(arrow_type) -> str:
    text = str(arrow_type)
    if text.startswith("decimal128"):
        return f"DECIMAL({arrow_type.precision}, {arrow_type.scale})"
    if text.startswith("timestamp"):
        # An instant (the source's timestamptz) stays one in every engine: DuckDB's
        # TIMESTAMPTZ, Spark's TIMESTAMP (not TIMESTAMP_NTZ), whatever the session's zone.
        return "TIMESTAMPTZ" if arrow_type.tz else "TIMESTAMP"
    return ARROW_SQL[text]


def lake_columns(table: Table, target: S3Target) -> list[str]:
    return lake_schema(table, target).names


def create_definition(table: Table, target: S3Target, into: str) -> str:
    columns = ",\n  ".join(
        f"{quoted(field.name)} {sql_type(field.type)}" for field in lake_schema(table, target)
    )
    return f"CREATE TABLE IF NOT EXISTS {into} (\n  {columns}\n)"


def merge_definition(table: Table, target: S3Target, into: str, source: str) -> str:
    columns = [name for name in lake_columns(table, target) if name != DELETED]
    sequence = quoted(CHANGE_SEQUENCE_COLUMN)
    picked = ", ".join(quoted(name) for name in columns)
    updates = ", ".join(f"{quoted(name)} = s.{quoted(name)}" for name in [*columns, DELETED])
    inserted = ", ".join(quoted(name) for name in [*columns, DELETED])
    values = ", ".join(f"s.{quoted(name)}" for name in [*columns, DELETED])
    return (
        f"MERGE INTO {into} AS t\n"
        f"USING (\n"
        f"  SELECT {picked}, {quoted(OP_COLUMN)} = 'D' AS {quoted(DELETED)}\n"
        f"  FROM (\n"
        f"    SELECT *, ROW_NUMBER() OVER (PARTITION BY {quoted('id')} ORDER BY {sequence} DESC)"
        f" AS change_rank\n"
        f"    FROM {source}\n"
        f"  ) AS ranked\n"
        f"  WHERE change_rank = 1\n"
        f") AS s\n"
        f"ON t.{quoted('id')} = s.{quoted('id')}\n"
        f"WHEN MATCHED AND s.{sequence} > t.{sequence} THEN UPDATE SET {updates}\n"
        f"WHEN NOT MATCHED THEN INSERT ({inserted}) VALUES ({values})"
    )


def current_definition(table: Table, into: str, view: str) -> str:
    """A view of a table's current state: the newest version of each key (a table built by
    lakehouse_apply holds several until lakehouse_maintain compacts it; one MERGEd holds
    one), deleted keys left out, with the source's columns only."""
    sequence = quoted(CHANGE_SEQUENCE_COLUMN)
    columns = ", ".join(quoted(column.name) for column in table.columns)
    return (
        f"CREATE OR REPLACE VIEW {view} AS\n"
        f"SELECT {columns}\n"
        f"FROM (\n"
        f"  SELECT *, ROW_NUMBER() OVER (PARTITION BY {quoted('id')} ORDER BY {sequence} DESC)"
        f" AS version_rank\n"
        f"  FROM {into}\n"
        f") AS versions\n"
        f"WHERE version_rank = 1 AND NOT {quoted(DELETED)}"
    )


def current_sql(table: Table, engine: str, into: str, view: str) -> str:
    return render(current_definition(table, into, view), engine)


def delta_current_sql(table: Table, path: str) -> str:
    """spark/delta_views.sql's view of a lakehouse_apply Delta table at `path`, read by path
    (delta.`PATH`), named `<table>_current` in the session's catalog."""
    view = f"{table.name}_current"
    sql = render(current_definition(table, PATH_PLACEHOLDER, view), "spark")
    return sql.replace(PATH_PLACEHOLDER, "delta.`" + path.replace("`", "``") + "`")


def render(definition: str, engine: str) -> str:
    return sqlglot.transpile(definition, read="duckdb", write=DIALECTS[engine], pretty=True)[0]


def create_sql(table: Table, target: S3Target, engine: str, into: str) -> str:
    sql = render(create_definition(table, target, into), engine)
    if engine == "spark":
        sql += "\nUSING iceberg"
    elif engine == "athena":
        location = "s3://your-bucket/lakehouse/" + into.rsplit(".", 1)[-1] + "/"
        sql += f"\nLOCATION '{location}'\nTBLPROPERTIES ('table_type' = 'ICEBERG')"
    return sql


def merge_sql(table: Table, target: S3Target, engine: str, into: str, source: str) -> str:
    return render(merge_definition(table, target, into, source), engine)


GLUE_JOB = '''"""A Glue (PySpark) job, generated by `bin/manage lakehouse_export`: applies the DMS
files in S3 to Iceberg tables in the catalog `glue_catalog` with the same MERGE as the
exported spark/*.sql (the last change per key; newer wins; deletes as tombstones).

Job parameters: --dms_folder s3://bucket/raw/lakehouse/public --database lakehouse
On Glue 4.0 or later: --datalake-formats iceberg, and glue_catalog configured for Iceberg
(spark.sql.catalog.glue_catalog=org.apache.iceberg.spark.SparkCatalog, its catalog-impl
org.apache.iceberg.aws.glue.GlueCatalog, its warehouse s3://bucket/lakehouse/). It uses no
Glue-only API, so spark-submit runs it as it is on EMR or any Spark with Iceberg's runtime.

It applies every file each run; keep the last run's position (a bookmark, or a list of files
taken) to apply only new files, as lakehouse_apply does with its table commits."""

import argparse

from pyspark.sql import SparkSession

parser = argparse.ArgumentParser()
parser.add_argument("--dms_folder", required=True)
parser.add_argument("--database", required=True)
args, _ = parser.parse_known_args()  # Glue passes arguments of its own (--JOB_NAME, ...)

spark = SparkSession.builder.getOrCreate()
# The capture's timestamps are UTC instants; the session's zone only changes how they print.
spark.conf.set("spark.sql.session.timeZone", "UTC")
spark.sql(f"CREATE NAMESPACE IF NOT EXISTS glue_catalog.{args.database}")
TABLES = __TABLES__

for table, (create, merge) in TABLES.items():
    spark.sql(create.format(database=args.database))
    # DMS writes a table's full load beside its changes, and the changes into date folders
    # (2026/12/04/): read the whole tree.
    changes = spark.read.option("recursiveFileLookup", "true").parquet(
        f"{args.dms_folder}/{table}/"
    )
    changes.createOrReplaceTempView(f"changes_{table}")
    spark.sql(merge.format(database=args.database))
'''


# Identifiers sqlglot can parse, put in place of what it cannot (or must not) rewrite.
DATABASE_PLACEHOLDER = "glue_database_placeholder"
PATH_PLACEHOLDER = "delta_table_path_placeholder"
CATALOG_PLACEHOLDER = "glue_catalog"  # the catalog's name in GLUE_JOB


def glue_job(tables: dict[str, Table], target: S3Target, catalog: str = "glue_catalog") -> str:
    """The Glue job, its tables in the Iceberg catalog named `catalog`."""
    entries = {}
    for name, table in tables.items():
        into = f"{catalog}.{DATABASE_PLACEHOLDER}.{name}"
        entries[name] = tuple(
            sql.replace(DATABASE_PLACEHOLDER, "{database}")
            for sql in (
                create_sql(table, target, "spark", into),
                merge_sql(table, target, "spark", into, f"changes_{name}"),
            )
        )
    return GLUE_JOB.replace(CATALOG_PLACEHOLDER, catalog).replace("__TABLES__", repr(entries))
