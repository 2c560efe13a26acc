"""A capture (a folder, or an S3 prefix) read as a lakehouse job reads it: each table's files
in the order they apply (full load first, then changes by name, which is by commit), and their
rows as Arrow tables typed by the capture's own schema. Change files of a batch that the
capture's record does not name yet are not read: they may still be deleted and written again."""

import csv
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from core.capture.files import arrow_schema, file_columns, text_lines
from core.capture.record import Capture
from core.capture.target import S3Target, change_range
from core.errors import CaptureError
from core.source.catalog import SCHEMA, Column, Table
from core.storage import Location, StoredFile


@dataclass(frozen=True)
class TableFiles:
    table: Table
    loads: list[StoredFile]
    changes: list[StoredFile]

    @property
    def ordered(self) -> list[StoredFile]:
        return self.loads + self.changes


def capture_table(name: str, record: dict) -> Table:
    columns = [Column(column, kind) for column, kind in record["columns"]]
    return Table(name, columns, record["primary_key"])


def hidden(name: str) -> bool:
    """Uploads in progress and tools' markers (`.NAME.partial`, `_SUCCESS`): not data yet."""
    return name.startswith((".", "_"))


def open_capture(folder: Location) -> tuple[Capture, dict[str, TableFiles]]:
    """The capture's record and each table's files; a location that is not a capture, or files
    that disagree with its settings, are a CaptureError (or a StorageError, if it cannot be
    reached)."""
    folder.check()
    if folder.is_local and not folder.path.is_dir():
        raise CaptureError(f"{folder} is not a folder: give the --output folder of cdc_tail")
    capture = Capture.load(folder)
    if capture is None:
        raise CaptureError(
            f"{folder} is not a capture: it has no capture.json (make one with "
            f"`bin/manage cdc_tail --output {folder}`)"
        )
    if not capture.tables:
        raise CaptureError(
            f"{folder} was written by an older cdc_tail that did not record its schema: "
            "capture again into a new folder"
        )
    suffix = capture.target.suffix
    found = {}
    for name, record in sorted(capture.tables.items()):
        table = capture_table(name, record)
        if table.primary_key != ["id"]:
            raise CaptureError(
                f"{name} has primary key {table.primary_key}; the lakehouse keys by id"
            )
        files = [f for f in folder.files(f"{SCHEMA}/{name}") if not hidden(f.name)]
        strangers = [f for f in files if not f.name.endswith(suffix)]
        if strangers:
            raise CaptureError(
                f"{strangers[0]} disagrees with the capture's settings (it writes {suffix} "
                "files): move it out of the folder"
            )
        by_name = {"key": lambda f: f.name}
        loads = sorted((f for f in files if f.name.startswith("LOAD")), **by_name)
        changes = [f for f in files if change_range(f.name)]
        unknown = [f for f in files if f not in loads and f not in changes]
        if unknown:
            raise CaptureError(f"{unknown[0]} is neither a LOAD file nor a change file")
        committed = sorted((f for f in changes if capture.records(f.name)), **by_name)
        found[name] = TableFiles(table, loads, committed)
    return capture, found


def added_later(found: list[str], expected: list[str]) -> list[str] | None:
    """The columns a file lacks because they were added to the table after it was written
    (the last data columns, before the change sequence); None if the file's columns are not
    the expected ones with such a tail missing."""
    if found == expected:
        return []
    cut = len(found) - 1  # the change sequence comes last
    tail_missing = cut >= 3 and len(found) < len(expected) and found[:cut] == expected[:cut]
    return expected[cut:-1] if tail_missing and found[-1] == expected[-1] else None


def file_header(file: StoredFile, target: S3Target) -> list[str] | None:
    """A file's column names, read cheaply (a Parquet footer, a CSV header line); None for a
    CSV without a header."""
    if file.name.endswith(".parquet"):
        try:
            with file.open() as handle:
                return pq.read_schema(handle).names
        except (pa.ArrowInvalid, OSError) as error:
            raise CaptureError(f"{file} is not a Parquet file ({error})") from None
    if not target.add_column_name:
        return None
    with text_lines(file) as handle:
        return next(csv.reader(handle, delimiter=target.csv_delimiter), [])


def check_columns(tables: dict[str, TableFiles], target: S3Target) -> None:
    """Every file has the columns the capture's schema says, before anything is applied, or
    lacks only columns added after it was written (DMS, with capture_ddls off, writes a new
    column into the later files of the same folders). Any other change stops the apply with
    one line."""
    for files in tables.values():
        expected = file_columns(files.table, target)
        for path in files.ordered:
            found = file_header(path, target)
            if found is not None and added_later(found, expected) is None:
                extra = [name for name in found if name not in expected]
                missing = [name for name in expected if name not in found]
                raise CaptureError(
                    f"{path} does not have the capture's columns (new: {extra or 'none'}, "
                    f"gone: {missing or 'none'}): the source schema changed in a way the "
                    "lakehouse does not follow (only added columns are); apply a new capture "
                    "to a new warehouse"
                )


CHUNK_ROWS = 50_000  # rows read and applied at a time from a full-load file
CSV_BLOCK = 1 << 22


def read_chunks(file: StoredFile, table: Table, target: S3Target, rows: int | None = None):
    """A capture file's rows, typed, `rows` (CHUNK_ROWS) at a time, so memory stays flat
    whatever the file's size; a file that does not follow the settings is a CaptureError."""
    rows = rows or CHUNK_ROWS
    schema = arrow_schema(table, target)  # the typed columns cdc_tail writes
    path = file.uri
    try:
        if file.name.endswith(".parquet"):
            parquet = pq.ParquetFile(file.open())
            missing = columns_missing(path, parquet.schema_arrow.names, schema)
            # A few row groups at a time: pyarrow pre-buffers (reads ahead, in few requests)
            # every row group it is asked for, which for the whole of a large file was 440 MB.
            groups = parquet.num_row_groups
            step = max(1, rows // max(1, parquet.metadata.row_group(0).num_rows)) if groups else 1
            for start in range(0, groups, step):
                window = range(start, min(groups, start + step))
                for batch in parquet.iter_batches(batch_size=rows, row_groups=window):
                    yield with_columns(pa.Table.from_batches([batch]), missing, schema)
            return
        stream = file.open()
        if file.name.endswith(".gz"):
            stream = pa.CompressedInputStream(stream, "gzip")
        reader = pacsv.open_csv(
            stream,
            read_options=pacsv.ReadOptions(
                column_names=None if target.add_column_name else schema.names,
                block_size=CSV_BLOCK,
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=target.csv_delimiter, quote_char='"', newlines_in_values=True
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={name: pa.string() for name in schema.names},
                null_values=[target.csv_null_value],
                strings_can_be_null=True,
                quoted_strings_can_be_null=False,
            ),
        )
        missing = columns_missing(path, reader.schema.names, schema)
        for batch in reader:
            for start in range(0, batch.num_rows, rows):
                text = pa.Table.from_batches([batch.slice(start, rows)])
                yield typed(with_columns(text, missing, text_schema(schema)), schema)
    except (pa.ArrowInvalid, OSError) as error:
        raise CaptureError(f"{path} is not readable with the capture's settings: {error}") from None


def columns_missing(path: str, found: list[str], schema: pa.Schema) -> list[str]:
    missing = added_later(found, schema.names)
    if missing is None:
        raise CaptureError(f"{path} has columns {found}, not {schema.names}")
    return missing


def text_schema(schema: pa.Schema) -> pa.Schema:
    return pa.schema([pa.field(name, pa.string()) for name in schema.names])


def with_columns(rows: pa.Table, missing: list[str], schema: pa.Schema) -> pa.Table:
    """The rows with the columns added after they were written, as NULL, in the schema's order
    and types."""
    for name in missing:
        rows = rows.append_column(name, pa.nulls(rows.num_rows, schema.field(name).type))
    return rows.select(schema.names).cast(schema)


def typed(text: pa.Table, schema: pa.Schema) -> pa.Table:
    """CSV text columns as the capture's types."""
    columns = []
    for field in schema:
        column = text.column(field.name)
        if pa.types.is_timestamp(field.type):
            column = column.cast(pa.timestamp("us")).cast(field.type, safe=False)
        elif not pa.types.is_string(field.type):
            column = column.cast(field.type)
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=schema)


def read_file(file: StoredFile, table: Table, target: S3Target) -> pa.Table:
    """A capture file's rows, typed, all at once (change files: small by CdcMinFileSize)."""
    chunks = list(read_chunks(file, table, target))
    return pa.concat_tables(chunks) if chunks else arrow_schema(table, target).empty_table()
