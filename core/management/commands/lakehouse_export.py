from core.capture.reader import open_capture
from core.lake.export import create_sql, current_sql, glue_job, merge_sql
from core.management.arguments import place
from core.management.base import ProjectCommand

# Where each engine's MERGE writes and what it reads.
TARGETS = {
    "duckdb": ("{table}", "changes"),
    "spark": ("glue_catalog.lakehouse.{table}", "changes_{table}"),
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

    def handle(self, *args, capture, output, **options):
        found, tables = open_capture(capture)
        output.check()
        self.write_all(found, tables, output)
        self.stdout.write(
            f"wrote {len(tables)} tables' CREATE and MERGE, and views of their current state, "
            f"for duckdb, spark and athena, and glue_job.py, into {output}"
        )

    def write_all(self, found, tables, folder) -> None:
        for engine, (into, source) in TARGETS.items():
            views = []
            for name, files in tables.items():
                table = files.table
                target = into.format(table=name)
                text = (
                    create_sql(table, found.target, engine, target)
                    + ";\n\n"
                    + merge_sql(table, found.target, engine, target, source.format(table=name))
                    + ";\n"
                )
                folder.write(f"{engine}/{name}.sql", text.encode())
                views.append(current_sql(table, engine, target, f"{target}_current") + ";\n")
            folder.write(f"{engine}/views.sql", "\n".join(views).encode())
        job = glue_job({name: files.table for name, files in tables.items()}, found.target)
        folder.write("glue_job.py", job.encode())
