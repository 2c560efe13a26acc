from core.capture.reader import open_capture
from core.lake.export import create_sql, current_sql, delta_current_sql, glue_job, merge_sql
from core.lake.spark import spark_uri
from core.management.arguments import identifier, place
from core.management.base import ProjectCommand

# Where each engine's MERGE writes and what it reads.
TARGETS = {
    "duckdb": ("{table}", "changes"),
    "spark": ("{catalog}.lakehouse.{table}", "changes_{table}"),
    "athena": ("lakehouse.{table}", "raw_{table}"),
}


class Command(ProjectCommand):
    help = (
        "Write, for each table of a capture, the CREATE TABLE and the MERGE that lakehouse_apply "
        "runs (the last change per key by the change sequence; update when newer, insert when "
        "not; deletes as tombstones), in DuckDB, Spark SQL (Iceberg) and Athena (Trino) SQL, "
        "all rendered from one definition, and a Glue PySpark job that runs the Spark form over "
        "the DMS folder."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "capture",
            type=place,
            help="a capture: a cdc_tail --output folder, or its s3://BUCKET/PREFIX (for the "
            "schema)",
        )
        parser.add_argument(
            "--output",
            type=place,
            default="lakehouse-sql",
            help="where to write: a folder, or s3://BUCKET/PREFIX (where Glue looks for job "
            "scripts); default lakehouse-sql/",
        )

        parser.add_argument(
            "--catalog",
            type=identifier,
            default="glue_catalog",
            help="the Spark catalog that holds the Iceberg tables, as spark/*.sql and "
            "glue_job.py name it (default glue_catalog; lakehouse_apply's local warehouse: "
            "lakehouse)",
        )
        parser.add_argument(
            "--warehouse",
            type=place,
            help="lakehouse_apply's Delta tables: also write spark/delta_views.sql, the "
            "current-state views over the tables at WAREHOUSE/<table>, read by path",
        )

    def handle(self, *args, capture, output, catalog, warehouse, **options):
        found, tables = open_capture(capture)
        output.check()
        self.write_all(found, tables, output, catalog)
        delta = ""
        if warehouse is not None:
            views = [
                delta_current_sql(files.table, spark_uri(warehouse.uri(name))) + ";\n"
                for name, files in tables.items()
            ]
            output.write("spark/delta_views.sql", "\n".join(views).encode())
            delta = f", spark/delta_views.sql over the Delta tables in {warehouse}"
        self.stdout.write(
            f"wrote {len(tables)} tables' CREATE and MERGE, and views of their current state, "
            f"for duckdb, spark (catalog {catalog}) and athena, and glue_job.py{delta}, into "
            f"{output}"
        )

    def write_all(self, found, tables, folder, catalog: str) -> None:
        for engine, (into, source) in TARGETS.items():
            views = []
            for name, files in tables.items():
                table = files.table
                target = into.format(table=name, catalog=catalog)
                text = (
                    create_sql(table, found.target, engine, target)
                    + ";\n\n"
                    + merge_sql(table, found.target, engine, target, source.format(table=name))
                    + ";\n"
                )
                folder.write(f"{engine}/{name}.sql", text.encode())
                views.append(current_sql(table, engine, target, f"{target}_current") + ";\n")
            folder.write(f"{engine}/views.sql", "\n".join(views).encode())
        job = glue_job({name: files.table for name, files in tables.items()}, found.target, catalog)
        folder.write("glue_job.py", job.encode())
