"""verify_cdc: does a capture folder hold exactly the source, and does its stream keep its rules?

The comparison works the way reladiff and data-diff do, so memory stays flat however big the
tables are: DuckDB keeps only the changes (the small part) and the last change per key, streams
the full-load rows past them, and both sides hash their rows per key range (the first two hex
digits of the id: 256 ranges); only ranges whose counts or hashes differ are compared row by row.

A row is hashed as md5 of its values as the files carry them (text as PostgreSQL prints it,
timestamps `yyyy-MM-dd HH:mm:ss.ffffff` in UTC, truncated to milliseconds where Parquet
timestamps are), joined by U+001F, NULL as `\\N`; a range as the sum of its rows' hashes'
first 60 bits, which needs no sort and is the same in both engines.
"""

import itertools
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from core.replication import SCHEMA
from core.replication.connections import read_tables, session
from core.replication.files import file_columns, is_timestamp, timestamp_unit
from core.replication.folder import Capture, CaptureError
from core.replication.schema import Table
from core.replication.target import (
    CHANGE_SEQUENCE_COLUMN,
    LOAD_SEQUENCE,
    OP_COLUMN,
    S3Target,
)
from core.storage import Location, S3Settings, StoredFile, location

NULL_MARK = "\\N"
DUCKDB_MEMORY = "128MB"
# DuckDB's CSV reader takes a 32 MB buffer per file by default; rows here are short.
CSV_BUFFER = 4 * 1024 * 1024
EXAMPLES = 3


@dataclass
class TableReport:
    table: str
    in_files: int = 0  # rows of the rebuilt final state
    live: int = 0
    missing: list[str] = field(default_factory=list)  # ids live but not in the files
    extra: list[str] = field(default_factory=list)  # ids in the files but not live
    changed: list[str] = field(default_factory=list)  # ids whose values differ
    examples: list[str] = field(default_factory=list)  # which columns differ, for a few ids
    problems: list[str] = field(default_factory=list)  # the stream's own rules broken

    @property
    def same(self) -> bool:
        return not (self.missing or self.extra or self.changed or self.problems)


def quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def files_of(output: Location, table: str, capture: Capture) -> list[StoredFile]:
    """A table's files of the capture, by name, without the change files of a batch that the
    record does not name yet (a cdc_tail at work, or one that died before its record)."""
    suffix = capture.target.suffix
    return sorted(
        (
            file
            for file in output.files(f"{SCHEMA}/{table}")
            if file.name.endswith(suffix) and capture.records(file.name)
        ),
        key=lambda file: file.key,
    )


def duck_text(column, target: S3Target, *, typed: bool | None = None) -> str:
    """DuckDB SQL for a column as the canonical text: CSV columns already are; Parquet and lake
    table columns are typed (`typed` says which, by default the capture's format)."""
    name = quoted(column.name)
    if not (typed if typed is not None else target.data_format == "parquet"):
        return name
    if is_timestamp(column.type):
        return f"strftime({name}::TIMESTAMP, '%Y-%m-%d %H:%M:%S.%f')"
    return f"CAST({name} AS VARCHAR)"


def postgres_text(column, target: S3Target) -> str:
    """PostgreSQL SQL for a live column as the same canonical text."""
    name = quoted(column.name)
    if not is_timestamp(column.type):
        return f"{name}::text"
    moment = f"{name} AT TIME ZONE 'UTC'" if "with time zone" in column.type else name
    if timestamp_unit(target) == "ms":
        moment = f"date_trunc('milliseconds', {moment})"
    return f"to_char({moment}, 'YYYY-MM-DD HH24:MI:SS.US')"


# A row hash's first 60 bits as an integer, in each engine, summed per range (order-free).
DUCK_RANGE = "sum(('0x' || substr(h, 1, 15))::UBIGINT::HUGEINT)::VARCHAR"
POSTGRES_RANGE = "sum(('x' || substr(h, 1, 15))::bit(60)::bigint)::text"


def row_hash(expressions: list[str]) -> str:
    joined = " || chr(31) || ".join(f"coalesce({e}, '{NULL_MARK}')" for e in expressions)
    return f"md5({joined})"


def source_relation(table: Table, target: S3Target) -> str:
    texts = [postgres_text(column, target) for column in table.columns]
    return f"SELECT id::text AS id, {row_hash(texts)} AS h FROM {SCHEMA}.{quoted(table.name)}"


class ScratchDuckDB:
    """A DuckDB in a temporary folder, bounded in memory: what does not fit goes to disk (a
    database file, not :memory:, so that its tables can too), and able to read s3:// URLs with
    `s3` settings. Removed by close()."""

    def __init__(self, prefix: str, s3: S3Settings | None = None):
        self.scratch = tempfile.TemporaryDirectory(prefix=prefix)
        self.duck = duckdb.connect(str(Path(self.scratch.name) / "scratch.duckdb"))
        self.duck.execute(f"SET memory_limit = '{DUCKDB_MEMORY}'")
        self.duck.execute(f"SET temp_directory = '{self.scratch.name}'")
        self.duck.execute("SET preserve_insertion_order = false")
        self.duck.execute("SET threads = 1")  # each thread has its own read buffers
        self.duck.execute("SET TimeZone = 'UTC'")
        if s3 is not None:
            s3.attach_to_duckdb(self.duck)

    def close(self) -> None:
        self.duck.close()
        self.scratch.cleanup()

    # On the view `final` (id, h: one row per key, its hash) that a reader's stage() defines:
    def ranges(self) -> dict[str, tuple[int, str]]:
        return {
            bucket: (count, digest)
            for bucket, count, digest in self.duck.execute(
                f"SELECT substr(id, 1, 2), count(*), {DUCK_RANGE} FROM final GROUP BY 1"
            ).fetchall()
        }

    def hashes_in(self, bucket: str) -> dict[str, str]:
        return dict(
            self.duck.execute(
                "SELECT id, h FROM final WHERE substr(id, 1, 2) = ?", [bucket]
            ).fetchall()
        )


class CaptureReader(ScratchDuckDB):
    """The files of one capture, read with DuckDB."""

    def __init__(self, output: Location, capture: Capture, tables: dict[str, Table]):
        super().__init__("verify-cdc-", s3=s3_of(output))
        self.output = output
        self.capture = capture
        self.target = capture.target
        self.tables = tables

    def scan(self, table: Table, files: list[StoredFile]) -> str:
        """A DuckDB relation of every row of the table's files, with its file's name."""
        paths = "[" + ", ".join("'" + f.uri.replace("'", "''") + "'" for f in files) + "]"
        target = self.target
        if target.data_format == "parquet":
            return f"read_parquet({paths}, filename = true)"
        columns = ", ".join(f"'{name}': 'VARCHAR'" for name in file_columns(table, target))
        null = target.csv_null_value.replace("'", "''")
        return (
            f"read_csv({paths}, header = {str(target.add_column_name).lower()}, "
            f"delim = '{target.csv_delimiter}', quote = '\"', escape = '\"', "
            f"nullstr = '{null}', columns = {{{columns}}}, auto_detect = false, "
            f"buffer_size = {CSV_BUFFER}, filename = true)"
        )

    def stage(self, table: Table) -> bool:
        """Table `changes` (file, op, timestamp, sequence, id, row hash of every change row),
        table `last` (per key its last change), and view `final`: the full-load rows no change
        touched, streamed from the files, and the last changes that are not deletes."""
        files = self.files = files_of(self.output, table.name, self.capture)
        if not files:
            return False
        loads = [file for file in files if file.name.startswith("LOAD")]
        changes = [file for file in files if not file.name.startswith("LOAD")]
        texts = [duck_text(column, self.target) for column in table.columns]
        ts, seq = quoted(self.target.timestamp_column_name), quoted(CHANGE_SEQUENCE_COLUMN)
        columns = (
            f"parse_filename(filename) AS file, {quoted(OP_COLUMN)} AS op, {ts} AS ts, "
            f"{seq} AS seq, {duck_text(table.column('id'), self.target)} AS id, "
            f"{row_hash(texts)} AS h"
        )
        empty = "(SELECT NULL::VARCHAR AS file, NULL::VARCHAR AS op, NULL::VARCHAR AS ts, "
        empty += "NULL::VARCHAR AS seq, NULL::VARCHAR AS id, NULL::VARCHAR AS h LIMIT 0)"
        source = f"(SELECT {columns} FROM {self.scan(table, changes)})" if changes else empty
        self.duck.execute(f"CREATE OR REPLACE TABLE changes AS SELECT * FROM {source}")
        self.duck.execute(
            "CREATE OR REPLACE TABLE last AS SELECT id, arg_max(h, seq) AS h, "
            "arg_max(op, seq) AS op FROM changes GROUP BY id"
        )
        self.load = f"(SELECT {columns} FROM {self.scan(table, loads)})" if loads else empty
        self.duck.execute(
            "CREATE OR REPLACE TEMP VIEW final AS "
            f"SELECT l.id, l.h FROM {self.load} l ANTI JOIN last USING (id) "
            "UNION ALL SELECT id, h FROM last WHERE op <> 'D'"
        )
        return True

    def problems(self) -> list[str]:
        """The rules a capture keeps, on the change rows and (streamed) the full-load rows."""
        problems = []
        one = self.duck.execute
        twice = one(
            "SELECT count(*) FROM (SELECT id, seq FROM changes GROUP BY ALL HAVING count(*) > 1)"
        ).fetchone()[0]
        if twice:
            problems.append(f"{twice:,} (key, sequence) pairs appear more than once")
        load = one(
            "SELECT max(ts), count(*) FILTER (WHERE seq <> ?), "
            "count(*) FILTER (WHERE op IS DISTINCT FROM 'I') FROM " + self.load,
            [LOAD_SEQUENCE],
        ).fetchone()
        bad_ops = one(
            "SELECT count(*) FROM changes WHERE op NOT IN ('I', 'U', 'D') OR op IS NULL"
        ).fetchone()[0] + (load[2] or 0)
        if bad_ops:
            problems.append(f"{bad_ops:,} rows without the Op they need (I, U or D)")
        first_change = one("SELECT min(ts) FROM changes").fetchone()[0]
        if load[1]:
            problems.append(f"{load[1]:,} full-load rows carry a change sequence")
        if load[0] and first_change and load[0] > first_change:
            problems.append(
                f"full-load rows are stamped {load[0]}, after a change committed {first_change}"
            )
        spans = one(
            "SELECT file, min(seq), max(seq) FROM changes GROUP BY file ORDER BY file"
        ).fetchall()
        for (before, _, last), (after, first, _) in itertools.pairwise(spans):
            if first <= last:
                problems.append(f"sequences go back from {before} to {after}")
                break
        return problems

    def duplicates_in(self, bucket: str) -> int:
        return self.duck.execute(
            f"SELECT count(*) - count(DISTINCT id) FROM {self.load} WHERE substr(id, 1, 2) = ?",
            [bucket],
        ).fetchone()[0]

    def row(self, table: Table, key: str) -> dict | None:
        files = self.files
        texts = ", ".join(f"{duck_text(c, self.target)} AS {quoted(c.name)}" for c in table.columns)
        found = self.duck.execute(
            f"SELECT {quoted(OP_COLUMN)}, {texts} FROM {self.scan(table, files)} "
            f"WHERE {duck_text(table.column('id'), self.target)} = ? "
            f"ORDER BY {quoted(CHANGE_SEQUENCE_COLUMN)} DESC LIMIT 1",
            [key],
        ).fetchone()
        if found is None or found[0] == "D":
            return None
        return dict(zip([c.name for c in table.columns], found[1:], strict=True))


def source_ranges(cursor, table: Table, target: S3Target) -> dict[str, tuple[int, str]]:
    cursor.execute(
        f"SELECT substr(id, 1, 2), count(*), {POSTGRES_RANGE} "
        f"FROM ({source_relation(table, target)}) s GROUP BY 1"
    )
    return {bucket: (count, digest) for bucket, count, digest in cursor.fetchall()}


def source_hashes_in(cursor, table: Table, target: S3Target, bucket: str) -> dict[str, str]:
    cursor.execute(
        f"SELECT id, h FROM ({source_relation(table, target)}) s WHERE substr(id, 1, 2) = %s",
        [bucket],
    )
    return dict(cursor.fetchall())


def source_row(cursor, table: Table, target: S3Target, key: str) -> dict | None:
    texts = ", ".join(postgres_text(column, target) for column in table.columns)
    cursor.execute(f"SELECT {texts} FROM {SCHEMA}.{quoted(table.name)} WHERE id = %s", [key])
    found = cursor.fetchone()
    return None if found is None else dict(zip([c.name for c in table.columns], found, strict=True))


def s3_of(location: Location) -> S3Settings | None:
    return None if location.is_local else location.settings


def verify_capture(params: dict, output: Location | str) -> dict[str, TableReport]:
    """Every core table's rebuilt state against the live table, and the stream's rules."""
    output = location(output)
    output.check()
    capture = Capture.load(output)
    if capture is None:
        raise CaptureError(f"{output} holds no capture (no capture.json): run cdc_tail --output")
    tables = read_tables(params)
    reader = CaptureReader(output, capture, tables)
    reports: dict[str, TableReport] = {}
    try:
        with session(params) as cursor:
            for name, table in tables.items():
                reports[name] = compare_table(reader, cursor, table)
    finally:
        reader.close()
    return reports


def compare_table(reader, cursor, table: Table) -> TableReport:
    """Compare what `reader` holds of a table (a capture's files, a lake table) with the live
    table: counts and hashes per key range, rows only where a range differs. `reader` offers
    stage(table) -> bool (False: it holds nothing of it), problems(), ranges(),
    hashes_in(bucket), duplicates_in(bucket) and row(table, key)."""
    target = reader.target
    report = TableReport(table.name)
    theirs = source_ranges(cursor, table, target)
    report.live = sum(count for count, _ in theirs.values())
    try:
        holds = reader.stage(table)
    except duckdb.Error as error:
        report.problems.append(f"not readable with the capture's settings: {error}")
        return report
    ours: dict[str, tuple[int, str]] = reader.ranges() if holds else {}
    if holds:
        report.problems += reader.problems()
    report.in_files = sum(count for count, _ in ours.values())
    for bucket in sorted(set(ours) | set(theirs)):
        if ours.get(bucket) == theirs.get(bucket):
            continue
        mine = reader.hashes_in(bucket) if holds else {}
        live = source_hashes_in(cursor, table, target, bucket)
        if holds and (twice := reader.duplicates_in(bucket)):
            report.problems.append(f"{twice:,} rows appear more than once")
        report.missing += sorted(live.keys() - mine.keys())
        report.extra += sorted(mine.keys() - live.keys())
        report.changed += sorted(key for key in mine.keys() & live.keys() if mine[key] != live[key])
    for key in report.changed[:EXAMPLES]:
        captured = reader.row(table, key) or {}
        live_row = source_row(cursor, table, target, key) or {}
        differing = [
            f"{column}: files {captured.get(column)!r}, source {live_row.get(column)!r}"
            for column in live_row
            if captured.get(column) != live_row.get(column)
        ]
        report.examples.append(f"{key}: " + "; ".join(differing))
    return report
