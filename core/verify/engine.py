"""One engine for every reconciliation (verify_cdc, lakehouse_verify, the manifest): a table's
rows, wherever they are, against the live PostgreSQL table, the way reladiff and data-diff work,
so that memory stays flat however big the tables are.

Both sides hash their rows per key range (the first two hex digits of the id: 256 ranges); only
ranges whose counts or hashes differ are compared row by row. A row is hashed as md5 of its
values as the capture files carry them (text as PostgreSQL prints it, timestamps
`yyyy-MM-dd HH:mm:ss.ffffff` in UTC, truncated to milliseconds where Parquet timestamps are),
joined by U+001F, NULL as `\\N`; a range as the sum of its rows' hashes' first 60 bits, which
needs no sort and is the same in both engines. DuckDB works in a scratch folder, within a
memory limit, and reads s3:// through the pinned httpfs extension.
"""

from dataclasses import dataclass, field

import duckdb

from core.capture.files import is_timestamp, timestamp_unit
from core.capture.target import S3Target
from core.source.catalog import SCHEMA, Table
from core.source.quoting import quoted
from core.storage.scratch import ScratchDuckDB

NULL_MARK = "\\N"
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


class RangeReader(ScratchDuckDB):
    """A scratch DuckDB holding a view `final` (id, h: one row per key, its hash), which a
    reader's stage() defines."""

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
