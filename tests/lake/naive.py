"""A deliberately naive apply, kept to prove that the scenarios have teeth.

It is right except for the one mistake it is asked to make, so a scenario that it then gets
wrong catches that mistake:

- by_timestamp:   the last change per key by the row's `updated_at` (or the DMS commit time),
                  ties going to the first row of the file, instead of by change sequence;
- no_dedupe:      each file MERGEd as it is: a key with several rows fails, as Athena and
                  Delta fail (MERGE_TARGET_ROW_MULTIPLE_MATCHES);
- partition_join: the MERGE matches on (tenant_id, id), the partition column included;
- fixed_schema:   the table keeps the columns of its first file, whatever later files carry.

Files apply full load first, then the change files by name, which for one delivery of a
capture is commit order; or, given `deliveries`, each file as it arrives (twice if delivered
twice), with no record of what was applied and no sequence guard: the mistake of a job
triggered by S3 events.
"""

from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from core.capture.reader import open_capture, read_file
from core.storage import location

MISTAKES = ("by_timestamp", "no_dedupe", "partition_join", "fixed_schema")


class MultipleMatches(Exception):
    pass


def naive_apply(
    capture: Path, mistake: str | None, deliveries: list[Path] | None = None
) -> duckdb.DuckDBPyConnection:
    """The capture applied to in-memory DuckDB tables, one per source table."""
    found, tables = open_capture(location(capture))
    duck = duckdb.connect()
    duck.execute("SET TimeZone = 'UTC'")
    for name, files in tables.items():
        ordered = files.ordered
        if deliveries is not None:
            mine = {file.uri: file for file in ordered}
            ordered = [mine[str(path)] for path in deliveries if str(path) in mine]
        for number, path in enumerate(ordered):
            rows = read_file(path, files.table, found.target)
            kept = [c for c in rows.column_names if c != "Op"]
            if number == 0 and mistake == "fixed_schema":
                kept = [c for c in pq.read_schema(path.open()).names if c != "Op"]
            if number == 0:
                duck.register("first", rows.select(kept).slice(0, 0))
                duck.execute(f'CREATE TABLE "{name}" AS SELECT * FROM first')
                duck.unregister("first")
            duck.register("batch", rows)
            duck.execute(
                "CREATE OR REPLACE TEMP TABLE numbered AS "
                "SELECT *, row_number() OVER () AS file_row FROM batch"
            )
            if mistake == "no_dedupe":
                (repeated,) = duck.execute(
                    "SELECT count(*) - count(DISTINCT id) FROM numbered"
                ).fetchone()
                if repeated:
                    raise MultipleMatches(f"{name}: {repeated} keys with several rows")
            order = "ar_h_change_seq DESC"
            if mistake == "by_timestamp":
                stamp = "updated_at" if "updated_at" in kept else found.target.timestamp_column_name
                order = f"{stamp} DESC, file_row ASC"
            duck.execute(
                "CREATE OR REPLACE TEMP TABLE last AS SELECT * FROM numbered "
                f"QUALIFY row_number() OVER (PARTITION BY id ORDER BY {order}) = 1"
            )
            match = "t.id = l.id"
            if mistake == "partition_join" and "tenant_id" in kept:
                match += " AND t.tenant_id = l.tenant_id"
            duck.execute(f'DELETE FROM "{name}" t USING last l WHERE {match}')
            target_columns = [c[0] for c in duck.execute(f'DESCRIBE "{name}"').fetchall()]
            if mistake != "fixed_schema":
                for column in kept:
                    if column not in target_columns:  # a column added mid-stream
                        kind = duck.sql(f'SELECT "{column}" FROM last').types[0]
                        duck.execute(f'ALTER TABLE "{name}" ADD COLUMN "{column}" {kind}')
                        target_columns.append(column)
            listed = ", ".join(f'"{c}"' for c in target_columns)
            duck.execute(
                f'INSERT INTO "{name}" ({listed}) SELECT {listed} FROM last WHERE "Op" <> \'D\''
            )
            duck.unregister("batch")
    return duck
