import time

from core.capture.reader import open_capture
from core.lake.apply import TableApplied, apply_capture
from core.lake.store import TableFormat
from core.lake.writer import give_back_freed_memory
from core.management.arguments import (
    TABLE_FORMATS,
    place,
    renamed,
    table_format,
    usage_error,
)
from core.management.base import ProjectCommand


class Command(ProjectCommand):
    help = (
        "Apply a cdc_tail capture folder to Delta Lake or Iceberg tables: full load first, "
        "then changes in change-sequence order, the last change per key appended as a new "
        "version (one commit per table and group of files), so an apply costs what its batch "
        "costs; readers see the newest version of each key, and lakehouse_maintain compacts. "
        "Each table records in its own commits which files it has taken, so a rerun applies "
        "only what is new, and files delivered twice or out of order change nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "capture", type=place, help="a cdc_tail --output folder, or its s3://BUCKET/PREFIX"
        )
        parser.add_argument(
            "--warehouse",
            type=place,
            required=True,
            help="where the tables are kept: a folder, or s3://BUCKET/PREFIX",
        )
        parser.add_argument(
            "--table-format",
            type=table_format,
            metavar=TABLE_FORMATS,
            default=TableFormat.DELTA,
            help="delta: Delta Lake tables at WAREHOUSE/<table> (the default); iceberg: Apache "
            "Iceberg tables, namespace lakehouse, in a SQLite catalog at WAREHOUSE/catalog.db "
            "(for an s3:// warehouse: in PostgreSQL, database lakehouse_catalog)",
        )
        renamed(parser, "--format", "--table-format", type=table_format)
        parser.add_argument(
            "--engine",
            choices=("python", "spark"),
            default="python",
            help="python: this process, delta-rs or pyiceberg (the default: fastest on one "
            "machine); spark: Spark reads the files and appends, through delta-spark or "
            "Iceberg's Spark runtime, into the same tables (needs `make engines`)",
        )
        parser.add_argument(
            "--master",
            help="with --engine spark: where Spark runs, local[N] (local[2] by default) or a "
            "cluster's master URL (spark://HOST:7077, yarn, k8s://...) whose executors reach "
            "the capture and the warehouse; under spark-submit, its own --master",
        )

    def handle(self, *args, capture, warehouse, engine, master, verbosity, **options):
        table_format = options["table_format"]
        if master and engine != "spark":
            raise usage_error("--master says where Spark runs: give it with --engine spark")
        give_back_freed_memory()
        started = time.monotonic()
        runner, spark_said = None, ""
        if engine == "spark":
            from core.lake.spark import spark_engine

            # A wrong capture or warehouse is told before the JVM starts.
            open_capture(capture)
            warehouse.check()
            runner = spark_engine(capture, warehouse, table_format, master)
            # The JVM's start is reported apart: a cluster's driver pays it once.
            spark_said = f"; its JVM started in {time.monotonic() - started:.1f}s"
            started = time.monotonic()
        result = apply_capture(
            capture,
            warehouse,
            table_format=table_format,
            on_table=self.report if verbosity >= 2 else None,
            engine=runner,
        )
        seconds = time.monotonic() - started
        rows = sum(table.rows for table in result.tables.values())
        if verbosity >= 1:
            self.stdout.write(
                f"applied {result.files:,} files ({rows:,} rows) to "
                f"{len(result.tables)} {table_format} tables in {warehouse} in {seconds:.1f}s"
                + (
                    f" (Spark, {spark_master()}{spark_said}{jvm_peak()})"
                    if engine == "spark"
                    else ""
                )
                if result.files
                else f"nothing new in {capture}: every table has taken every file"
            )

    def report(self, table: str, applied: TableApplied) -> None:
        self.stdout.write(
            f"{table:<18} {applied.files:>5,} files {applied.rows:>10,} rows "
            f"{applied.commits:>4,} commits"
        )


def spark_master() -> str:
    from core.lake.spark import spark_session

    return spark_session().sparkContext.master


def jvm_peak() -> str:
    from core.lake.spark import spark_peak_mb

    peak = spark_peak_mb()
    return f", peak {peak:,.0f} MB" if peak is not None else ""
