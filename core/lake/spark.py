"""lakehouse_apply run by Spark (`--engine spark`): the same plan as apply.py, made here from
the tables' own commits (delta-rs, pyiceberg), and the data work done by Spark: the capture
files read, the last change per key taken, and the versions appended by delta-spark or
Iceberg's Spark runtime, each commit recording the files it applied exactly as ours do. So a
table is written by either engine, and read and appended by the other: one history.

Where Spark runs is `--master`: local[N] on this machine, or a cluster (spark://, yarn, k8s://)
whose executors reach the capture and the warehouse (s3a://). This process is the driver.

Exactly once. Delta: each append carries the application transaction the in-process apply
uses (`txnAppId` lakehouse_apply, one more than the version planned from); Delta skips or
refuses a second commit of the same step, and a step not committed is planned again. Iceberg:
the append is committed on top of the table's newest snapshot, which Spark reads itself; a
snapshot that moved between the plan and the commit is found after it, and planned again."""

import functools
import json
import os
import threading
from pathlib import Path
from urllib.parse import unquote, urlparse

import pyarrow as pa
import pyarrow.parquet as pq
from django.conf import settings

from core.capture.files import arrow_schema
from core.capture.reader import TableFiles, file_header
from core.capture.target import CHANGE_SEQUENCE_COLUMN, OP_COLUMN, S3Target
from core.errors import CommitConflict, LakeError
from core.lake.apply import TableApplied, change_groups, planned_taken
from core.lake.commits import CAPTURE_KEY, FILES_KEY
from core.lake.delta import APPLICATION, files_applied
from core.lake.layout import BUCKET, DELETED, lake_schema
from core.lake.store import TableFormat
from core.source.catalog import Table
from core.storage import Location, S3Settings, StoredFile

DEFAULT_MASTER = "local[2]"
LOG_SETTINGS = Path(__file__).with_name("spark-log4j2.properties")


def spark_uri(uri: str) -> str:
    """Hadoop's name for a location: s3a:// for S3."""
    return "s3a://" + uri.removeprefix("s3://") if uri.startswith("s3://") else uri


def spark_type_name(kind: pa.DataType) -> str:
    """A Spark SQL type for an Arrow one of the lake's schemas."""
    if pa.types.is_decimal(kind):
        return f"decimal({kind.precision},{kind.scale})"
    if pa.types.is_timestamp(kind):
        return "timestamp" if kind.tz else "timestamp_ntz"
    names = {
        pa.string(): "string",
        pa.bool_(): "boolean",
        pa.int16(): "smallint",
        pa.int32(): "int",
        pa.int64(): "bigint",
        pa.date32(): "date",
    }
    if kind not in names:
        raise LakeError(f"no Spark type for {kind}")
    return names[kind]


def ddl(schema: pa.Schema) -> str:
    return ", ".join(f"`{field.name}` {spark_type_name(field.type)}" for field in schema)


@functools.cache
def spark_session(master: str | None = None):
    """The process's Spark session (one JVM, started once: it takes seconds), with the Delta
    and Iceberg runtimes; each apply works in a new session of it (its own catalogs). Under
    spark-submit, its --master and --conf stand unless `master` is given; otherwise the
    master is local[2]."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise LakeError("pyspark is not installed: run `make engines`") from None
    runtime = settings.SPARK_RUNTIME()  # devstack's installs, as the project's settings say
    if runtime.missing:
        raise LakeError(runtime.missing)
    jars = runtime.jars
    if runtime.java_home is not None:
        os.environ["JAVA_HOME"] = str(runtime.java_home)
    builder = SparkSession.builder
    shuffle_partitions = "16"  # a cluster's: each batch is small, so few tasks
    if master or "PYSPARK_GATEWAY_PORT" not in os.environ:  # not started by spark-submit
        master = master or DEFAULT_MASTER
        builder = builder.master(master)
        if master.startswith("local"):
            os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # nothing leaves the machine
            # Delta rebuilds a table's state from its log with a Spark job of 50 tasks by
            # default, made for clusters: on one machine 2 take a third off each commit.
            builder = builder.config("spark.databricks.delta.snapshotPartitions", "2")
            # Likewise a shuffle into 4 tasks, not 16, for the same rows on two cores.
            shuffle_partitions = "4"
    builder = (
        builder.appName("lakehouse_apply")
        .config("spark.jars", ",".join(str(path) for path in jars))
        .config(
            "spark.sql.extensions",
            "io.delta.sql.DeltaSparkSessionExtension,"
            "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions",
        )
        .config(
            "spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog"
        )
        # Instants are kept as UTC; Parquet timestamps as Delta's other writers write them.
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.parquet.outputTimestampType", "TIMESTAMP_MICROS")
        .config("spark.driver.memory", os.environ.get("SPARK_DRIVER_MEMORY", "2g"))
        .config("spark.sql.shuffle.partitions", shuffle_partitions)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.extraJavaOptions", f"-Dlog4j2.configurationFile={LOG_SETTINGS}")
    )
    session = without_start_up_chatter(builder.getOrCreate)
    session.sparkContext.setLogLevel("ERROR")
    return session


# What the JVM and Spark print to stderr as they start, whatever the log settings say.
START_UP_CHATTER = (
    b"Using incubator modules",
    b"Setting default log level",
    b"To adjust logging level use",
)


def without_start_up_chatter(start):
    """start(), which starts the JVM: the JVM takes this process's stderr as its own, so while
    it starts, stderr is a pipe that a thread reads, passing every line on but the JVM's and
    Spark's start-up chatter. The JVM keeps the pipe (and the thread, its errors) for life;
    this process has its own stderr back at once."""
    read, write = os.pipe()
    real = os.dup(2)
    relay = threading.Thread(target=pass_on, args=(read, real), name="spark-stderr", daemon=True)
    relay.start()
    os.dup2(write, 2)
    os.close(write)
    try:
        return start()
    finally:
        os.dup2(real, 2)


def pass_on(read: int, real: int) -> None:
    with os.fdopen(read, "rb") as lines:
        for line in lines:
            if not any(chatter in line for chatter in START_UP_CHATTER):
                os.write(real, line)
    os.close(real)


def spark_process_id() -> int | None:
    """The JVM's process id, if this process started one (the tests stop it by its id)."""
    if not spark_session.cache_info().currsize:
        return None
    gateway = spark_session().sparkContext._gateway
    process = getattr(gateway, "proc", None)
    return process.pid if process is not None else None


def spark_peak_mb() -> float | None:
    """The JVM's peak resident memory so far, in MB (Linux), if this process started one."""
    pid = spark_process_id()
    try:
        status = Path(f"/proc/{pid}/status").read_text() if pid else ""
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


def file_rows(paths: list[StoredFile]) -> int:
    """The rows of Parquet files, from their footers (no Spark job for a count)."""
    total = 0
    for path in paths:
        with path.open() as handle:
            total += pq.ParquetFile(handle).metadata.num_rows
    return total


class SparkEngine:
    """apply.apply_table's work, done by Spark; `catalog` configures a session for the
    warehouse's Iceberg catalog (None for Delta)."""

    def __init__(self, session, table_format: TableFormat, catalog: dict[str, str] | None):
        self.session = session
        self.table_format = table_format
        self.catalog_name = None
        if catalog is not None:
            self.catalog_name = catalog.pop("name")
            prefix = f"spark.sql.catalog.{self.catalog_name}"
            session.conf.set(prefix, "org.apache.iceberg.spark.SparkCatalog")
            for key, value in catalog.items():
                session.conf.set(f"{prefix}.{key}", value)

    def __call__(
        self, store, files: TableFiles, target: S3Target, capture_id: str, done: TableApplied
    ) -> None:
        taken = planned_taken(store, files, capture_id)
        schema = lake_schema(files.table, target)
        for path in files.loads:
            if path.name not in taken:
                rows = self.read([path], files.table, target)
                done.rows += self.append(
                    store, self.lake_columns(rows, schema), [path.name], capture_id
                )
                done.files += 1
                done.commits += 1
        for group in change_groups(files, taken):
            rows = self.read(group, files.table, target)
            last = self.last_change_per_key(rows, schema)
            self.append(store, last, [path.name for path in group], capture_id)
            done.rows += file_rows(group) if target.data_format != "csv" else rows.count()
            done.files += len(group)
            done.commits += 1

    # Reading the capture

    def read(self, paths: list[StoredFile], table: Table, target: S3Target):
        """The files' rows, typed as the capture's schema (columns added after a file was
        written are NULL in its rows)."""
        schema = arrow_schema(table, target)
        if target.data_format != "csv":
            return self.session.read.schema(ddl(schema)).parquet(
                *[spark_uri(path.uri) for path in paths]
            )
        from pyspark.sql import functions as F

        # CSV: files with the same header read together, by name; then typed.
        by_header: dict[tuple[str, ...], list[str]] = {}
        for path in paths:
            header = file_header(path, target) or schema.names
            by_header.setdefault(tuple(header), []).append(spark_uri(path.uri))
        frames = []
        for header, uris in by_header.items():
            text = ", ".join(f"`{name}` string" for name in header)
            frame = (
                self.session.read.schema(text)
                .option("header", str(target.add_column_name).lower())
                .option("sep", target.csv_delimiter)
                .option("quote", '"')
                .option("escape", '"')
                .option("multiLine", "true")
                .option("nullValue", target.csv_null_value)
                .option("mode", "FAILFAST")
                .csv(uris)
            )
            frames.append(
                frame.select(
                    *[
                        (F.col(f"`{field.name}`") if field.name in header else F.lit(None))
                        .cast(spark_type_name(field.type))
                        .alias(field.name)
                        for field in schema
                    ]
                )
            )
        combined = frames[0]
        for frame in frames[1:]:
            combined = combined.unionByName(frame)
        return combined

    def lake_columns(self, rows, schema: pa.Schema):
        """Capture rows shaped as the lake's, with the tombstone flag and the partition."""
        from pyspark.sql import functions as F

        kept = [F.col(f"`{name}`") for name in schema.names if name != DELETED]
        return rows.select(
            *kept,
            (F.col(OP_COLUMN) == F.lit("D")).alias(DELETED),
            F.substring(F.col("id"), 1, 1).alias(BUCKET),
        )

    def last_change_per_key(self, rows, schema: pa.Schema):
        from pyspark.sql import Window
        from pyspark.sql import functions as F

        newest = Window.partitionBy("id").orderBy(F.col(CHANGE_SEQUENCE_COLUMN).desc())
        ranked = rows.withColumn("_change_rank", F.row_number().over(newest))
        return self.lake_columns(ranked.where("_change_rank = 1"), schema)

    # Writing the tables

    def append(self, store, rows, files: list[str], capture_id: str) -> int:
        """The rows appended in one commit recording `files`; the rows added."""
        metadata = {FILES_KEY: json.dumps(files), CAPTURE_KEY: capture_id}
        shaped = self.shaped(rows, store.schema)
        if self.table_format == TableFormat.DELTA:
            return self.append_delta(store, shaped, files, metadata)
        return self.append_iceberg(store, shaped, files, metadata)

    def shaped(self, rows, schema: pa.Schema):
        """The rows cast to the table's own types (Iceberg widens some), in its order."""
        from pyspark.sql import functions as F

        return rows.select(
            *[F.col(f"`{f.name}`").cast(spark_type_name(f.type)).alias(f.name) for f in schema]
        )

    def append_delta(self, store, rows, files: list[str], metadata: dict) -> int:
        table = store.writable()
        store.add_columns(table)
        planned = table.version()
        step = (table.transaction_version(APPLICATION) or 0) + 1
        try:
            (
                rows.repartition(BUCKET)
                .write.format("delta")
                .mode("append")
                .partitionBy(BUCKET)
                .option("txnAppId", APPLICATION)
                .option("txnVersion", step)
                .option("userMetadata", json.dumps(metadata))
                .save(spark_uri(store.uri))
            )
        except Exception as error:  # py4j's, wrapping Delta's
            if "Concurrent" in type(error).__name__ + str(error)[:500]:
                raise CommitConflict(str(error).splitlines()[0]) from None
            raise
        # Ours is the next version, or Delta skipped the step (another apply took it) or
        # another writer committed first: then plan again.
        made = store.load(version=planned + 1) if store.load().version() > planned else None
        commit = made.history(1)[0] if made is not None else {}
        if files_applied(commit) != files:
            raise CommitConflict(f"{store.name} moved while Spark appended")
        store.table = made
        return int(commit.get("operationMetrics", {}).get("numOutputRows", 0))

    def append_iceberg(self, store, rows, files: list[str], metadata: dict) -> int:
        table = store.writable()
        planned = table.metadata.current_snapshot_id
        writer = rows.writeTo(f"{self.catalog_name}.{store.identifier[0]}.{store.name}")
        for key, value in metadata.items():
            writer = writer.option(f"snapshot-property.{key}", value)
        try:
            writer.append()
        except Exception as error:
            if "CommitFailed" in type(error).__name__ + str(error)[:500]:
                raise CommitConflict(str(error).splitlines()[0]) from None
            raise
        store.table = store.load()
        snapshot = store.table.current_snapshot()
        summary = snapshot.summary.additional_properties if snapshot.summary else {}
        if (
            json.loads(summary.get(FILES_KEY, "[]")) != files
            or snapshot.parent_snapshot_id != planned
        ):
            raise CommitConflict(f"{store.name} moved while Spark appended")
        return int(summary.get("added-records", 0))


def iceberg_catalog(warehouse) -> dict[str, str]:
    """Spark's settings for the warehouse's Iceberg catalog: the one pyiceberg uses (Iceberg's
    JDBC catalog reads pyiceberg's SqlCatalog tables), under the same catalog name."""
    from core.lake.iceberg import CATALOG_FILE, NAMESPACE

    if warehouse.is_local:
        folder = Path(warehouse.path).resolve()
        return {
            "name": NAMESPACE,
            "type": "jdbc",
            "uri": f"jdbc:sqlite:{folder / CATALOG_FILE}",
            "warehouse": f"file://{folder}",
            "cache-enabled": "false",  # pyiceberg commits to the same tables
            # pyiceberg made the catalog's tables (with the view-aware column: V1). Iceberg's
            # check for them leaves a result set open, which in SQLite pins the connection
            # to that moment: later tables were not seen, and commits were locked out.
            "jdbc.init-catalog-tables": "false",
            "jdbc.schema-version": "V1",
        }
    from core.lake.iceberg import catalog_database_url, catalog_name

    database = urlparse(catalog_database_url())
    settings = warehouse.settings
    catalog = {
        "name": catalog_name(warehouse),
        "type": "jdbc",
        "uri": f"jdbc:postgresql://{database.hostname}:{database.port or 5432}{database.path}",
        "jdbc.user": unquote(database.username or ""),
        "jdbc.password": unquote(database.password or ""),
        "warehouse": warehouse.uri(),
        "cache-enabled": "false",
        "jdbc.init-catalog-tables": "false",
        "jdbc.schema-version": "V1",
        # Iceberg's S3FileIO takes pyiceberg's names for keys and endpoint; the region is the
        # client's.
        "io-impl": "org.apache.iceberg.aws.s3.S3FileIO",
        "client.region": settings.region,
        **settings.iceberg_properties(),
    }
    if settings.endpoint_url:
        catalog["s3.path-style-access"] = "true"
    return catalog


def s3a_settings(settings: S3Settings) -> dict[str, str]:
    """Hadoop's S3A settings (s3a://, the capture's files and Delta tables) for the project's
    S3 settings: the local store, another endpoint, or AWS's. As `spark.hadoop.KEY` they go to
    spark-submit's --conf."""
    values = {
        "fs.s3a.access.key": settings.access_key_id,
        "fs.s3a.secret.key": settings.secret_access_key,
        "fs.s3a.endpoint.region": settings.region,
        "fs.s3a.aws.credentials.provider": (
            "org.apache.hadoop.fs.s3a.TemporaryAWSCredentialsProvider"
            if settings.session_token
            else "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider"
        ),
    }
    if settings.session_token:
        values["fs.s3a.session.token"] = settings.session_token
    if settings.endpoint_url:
        values["fs.s3a.endpoint"] = settings.endpoint_url
        values["fs.s3a.path.style.access"] = "true"
        values["fs.s3a.connection.ssl.enabled"] = str(
            settings.endpoint_url.startswith("https://")
        ).lower()
    return values


def reach_s3(session, settings: S3Settings) -> None:
    hadoop = session.sparkContext._jsc.hadoopConfiguration()
    for key, value in s3a_settings(settings).items():
        hadoop.set(key, value)


def spark_engine(
    capture: Location, warehouse: Location, table_format: TableFormat, master: str | None
) -> SparkEngine:
    session = spark_session(master).newSession()
    for place in (capture, warehouse):
        if not place.is_local:
            reach_s3(session, place.settings)
    catalog = iceberg_catalog(warehouse) if table_format == TableFormat.ICEBERG else None
    return SparkEngine(session, table_format, catalog)
