"""Capture files as the S3 target settings make DMS write them: rows of values, as PostgreSQL
printed them, into CSV or Parquet, written into a local spool file that is then published into
the capture's location (renamed into place on disk, one PUT to S3).

Values are text from end to end: json and jsonb byte for byte, numerics exactly, never through a
float. Timestamps are the one thing rewritten: always `yyyy-MM-dd HH:mm:ss.ffffff` in UTC in
CSV, and in Parquet TIMESTAMP columns (UTC) at the target's precision.
"""

import contextlib
import csv
import gzip
import io
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from core.capture.target import CHANGE_SEQUENCE_COLUMN, OP_COLUMN, S3Target
from core.source.catalog import Table
from core.storage import StoredFile

PARQUET_VERSIONS = {"parquet-1-0": "1.0", "parquet-2-0": "2.6"}


def base_type(postgres_type: str) -> str:
    """numeric(12,2) -> numeric; character varying(80) -> character varying."""
    return postgres_type.split("(")[0]


def is_timestamp(postgres_type: str) -> bool:
    return postgres_type.startswith("timestamp")


def utc_timestamp(text: str) -> str:
    """A timestamp as PostgreSQL prints it in a UTC session ('2026-11-01 12:00:00.12+00') in the
    files' one format, '2026-11-01 12:00:00.120000'."""
    if text.endswith("+00"):  # the common case, kept cheap: it runs for most values
        size = len(text) - 3
        if size == 26:
            return text[:26]
        if size == 19:
            return text[:19] + ".000000"
        if size > 20:
            return text[:size] + "0" * (26 - size)
    end = 19
    if text[19:20] == ".":
        end = 20
        while end < len(text) and text[end].isdigit():
            end += 1
    offset = text[end:]
    if offset in ("", "+00"):
        return f"{text[:19]}.{text[20:end]:0<6}" if end > 19 else f"{text[:19]}.000000"
    moment = datetime.fromisoformat(text).astimezone(UTC)  # another zone: rare, so slow is fine
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")


def file_columns(table: Table, target: S3Target) -> list[str]:
    """The columns of a capture file: Op, the timestamp column, the table's, the sequence."""
    return [
        OP_COLUMN,
        target.timestamp_column_name,
        *[column.name for column in table.columns],
        CHANGE_SEQUENCE_COLUMN,
    ]


def timestamp_unit(target: S3Target) -> str:
    """Parquet timestamps are cut to milliseconds if the target says so; CSV keeps micros."""
    return (
        "ms"
        if target.data_format == "parquet" and target.parquet_timestamp_in_millisecond
        else "us"
    )


def arrow_type(postgres_type: str, target: S3Target):
    kind = base_type(postgres_type)
    unit = timestamp_unit(target)
    if kind == "numeric" and "(" in postgres_type:
        precision, scale = postgres_type[len("numeric(") : -1].split(",")
        if int(precision) <= 38:
            return pa.decimal128(int(precision), int(scale))
    return {
        "timestamp with time zone": pa.timestamp(unit, tz="UTC"),
        "timestamp without time zone": pa.timestamp(unit),
        "date": pa.date32(),
        "integer": pa.int32(),
        "smallint": pa.int16(),
        "bigint": pa.int64(),
        "boolean": pa.bool_(),
    }.get(kind, pa.string())


def arrow_schema(table: Table, target: S3Target) -> pa.Schema:
    """Op, the timestamp column (a STRING, as DMS writes it) and the sequence are strings."""
    types = [pa.string(), pa.string()]
    types += [arrow_type(column.type, target) for column in table.columns]
    types.append(pa.string())
    return pa.schema(list(zip(file_columns(table, target), types, strict=True)))


class FileWriter:
    """One capture file, written row by row into a local spool file, which `close()` finishes
    (and, if `durable`, fsyncs) for the caller to publish. Memory stays flat: CSV goes straight
    to the file, Parquet a row group at a time."""

    def __init__(self, spool: Path, table: Table, target: S3Target, *, durable: bool = True):
        self.spool = spool
        self.durable = durable
        self.table = table
        self.target = target
        self.rows = 0
        self.bytes = 0
        spool.parent.mkdir(parents=True, exist_ok=True)
        self.raw = spool.open("wb")
        if target.data_format == "csv":
            self.sink = (
                gzip.GzipFile(fileobj=self.raw, mode="wb")
                if target.suffix.endswith(".gz")
                else self.raw
            )
            self.null = target.csv_null_value
            self.special = {'"', "\n", "\r", target.csv_delimiter}
            if target.add_column_name:
                self.write_line(file_columns(table, target))
        else:
            self.schema = arrow_schema(table, target)
            self.pending: list[list] = []
            self.parquet = pq.ParquetWriter(
                self.raw,
                self.schema,
                compression="gzip" if target.compression_type == "GZIP" else "none",
                version=PARQUET_VERSIONS.get(target.parquet_version, "2.6"),
            )

    def write_line(self, values: list[str | None]) -> None:
        null, delimiter = self.null, self.target.csv_delimiter
        fields = [null if value is None else value for value in values]
        line = delimiter.join(fields)
        # Most rows need no quoting: check the whole line once, each field only if needed. An
        # empty string is quoted too (""): Spark's CSV reader takes an unquoted empty field
        # for NULL, whatever its nullValue says.
        if self.target.rfc4180 and (
            '"' in line
            or "\n" in line
            or "\r" in line
            or line.count(delimiter) != len(fields) - 1
            or "" in values
        ):
            fields = [
                '"' + value.replace('"', '""') + '"'
                if value is not None and (not value or not self.special.isdisjoint(value))
                else field
                for value, field in zip(values, fields, strict=True)
            ]
            line = delimiter.join(fields)
        data = (line + self.target.csv_row_delimiter).encode()
        self.bytes += len(data)
        self.sink.write(data)

    def write(self, row: list[str | None]) -> None:
        """One row: Op, timestamp, the table's columns (text as PostgreSQL printed it, None for
        NULL, timestamps already in the files' format), the change sequence."""
        self.rows += 1
        if self.target.data_format == "csv":
            self.write_line(row)
            return
        self.pending.append(row)
        self.bytes += sum(len(value) for value in row if value is not None)
        if len(self.pending) >= self.target.row_group_length:
            self.flush_rows()

    def flush_rows(self) -> None:
        if not self.pending:
            return
        columns = list(zip(*self.pending, strict=True))
        arrays = []
        for field, values in zip(self.schema, columns, strict=True):
            text = pa.array(values, type=pa.string())
            if pa.types.is_timestamp(field.type):
                parsed = text.cast(pa.timestamp("us"))
                arrays.append(parsed.cast(field.type, safe=False))  # ms: truncated, as DMS does
            else:
                arrays.append(text if pa.types.is_string(field.type) else text.cast(field.type))
        self.parquet.write_table(pa.Table.from_arrays(arrays, schema=self.schema))
        self.pending = []

    def close(self) -> Path:
        """Finish the file (fsynced if durable); returns the spool file, ready to publish."""
        if self.target.data_format == "csv":
            if self.sink is not self.raw:
                self.sink.close()
        else:
            self.flush_rows()
            self.parquet.close()
        self.raw.flush()
        if self.durable:
            os.fsync(self.raw.fileno())
        self.raw.close()
        return self.spool

    def discard(self) -> None:
        try:
            if self.target.data_format != "csv":
                # Closed before its file: a writer left to the garbage collector would write
                # its footer into a closed file.
                with contextlib.suppress(Exception):
                    self.parquet.close()
            self.raw.close()
        finally:
            self.spool.unlink(missing_ok=True)


# --- reading ----------------------------------------------------------------------------------


def arrow_text(value, field_type) -> str | None:
    """A Parquet value back as the text a CSV file would carry."""
    if value is None:
        return None
    if pa.types.is_timestamp(field_type):
        return (
            value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
            if value.tzinfo
            else (value.strftime("%Y-%m-%d %H:%M:%S.%f"))
        )
    if pa.types.is_boolean(field_type):
        return "true" if value else "false"
    return value.isoformat() if pa.types.is_date(field_type) else str(value)


def read_rows(file: StoredFile, table: Table, target: S3Target) -> Iterator[dict[str, str | None]]:
    """The rows of a capture file as {column: text or None}, read by the target's settings; a
    file that does not follow them raises ValueError naming the file."""
    columns = file_columns(table, target)
    path = file.uri
    if file.name.endswith(".parquet"):
        parquet = pq.ParquetFile(file.open())
        if parquet.schema_arrow.names != columns:
            raise ValueError(f"{path}: columns {parquet.schema_arrow.names}, expected {columns}")
        for batch in parquet.iter_batches():
            types = [field.type for field in batch.schema]
            for record in batch.to_pylist():
                yield {
                    name: arrow_text(record[name], kind)
                    for name, kind in zip(columns, types, strict=True)
                }
        return
    with text_lines(file) as handle:
        reader = csv.reader(handle, delimiter=target.csv_delimiter, strict=True)
        if target.add_column_name:
            header = next(reader, None)
            if header != columns:
                raise ValueError(f"{path}: header {header}, expected {columns}")
        for fields in reader:
            if len(fields) != len(columns):
                raise ValueError(f"{path}: a row of {len(fields)} fields, expected {len(columns)}")
            yield {
                name: None if value == target.csv_null_value else value
                for name, value in zip(columns, fields, strict=True)
            }


@contextlib.contextmanager
def text_lines(file: StoredFile) -> Iterator[io.TextIOBase]:
    """A CSV capture file (gzipped if its name says so) as text, for Python's csv reader."""
    with file.open() as raw:
        binary = gzip.GzipFile(fileobj=raw) if file.name.endswith(".gz") else raw
        yield io.TextIOWrapper(binary, encoding="utf-8", newline="")
