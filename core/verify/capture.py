"""verify_cdc: does a capture hold exactly the source, and does its stream keep its rules?

DuckDB keeps only the changes (the small part) and the last change per key, and streams the
full-load rows past them; the comparison with the live tables is core/verify/engine.py's.
"""

import itertools

from core.capture.files import file_columns
from core.capture.record import Capture
from core.capture.target import CHANGE_SEQUENCE_COLUMN, LOAD_SEQUENCE, OP_COLUMN
from core.errors import CaptureError
from core.replication.connections import read_tables
from core.source.catalog import SCHEMA, Table
from core.source.quoting import quoted
from core.source.sessions import session
from core.storage import Location, StoredFile
from core.storage.scratch import s3_of
from core.verify.engine import RangeReader, TableReport, compare_table, duck_text, row_hash

# DuckDB's CSV reader takes a 32 MB buffer per file by default; rows here are short.
CSV_BUFFER = 4 * 1024 * 1024


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


class CaptureReader(RangeReader):
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


def verify_capture(params: dict, output: Location) -> dict[str, TableReport]:
    """Every core table's rebuilt state against the live table, and the stream's rules."""
    output.check()
    if output.is_local and not output.path.is_dir():
        raise CaptureError(f"{output} is not a folder: give the --output folder of cdc_tail")
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
