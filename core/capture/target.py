"""The S3 target endpoint, described once: `export_dms` writes it into dms.tf and
s3-settings.json, `cdc_tail` writes files that follow it, and whatever reads a capture (verify,
the lakehouse apply) reads the files by it. Each field is a DMS S3 endpoint setting, with the
value this project gives it.
"""

from dataclasses import asdict, dataclass, fields
from datetime import datetime
from zoneinfo import ZoneInfo

from core.errors import TargetSettingsError

# The column added to every table by a table-mapping rule with the expression $AR_H_CHANGE_SEQ:
# DMS's change sequence, which orders changes across and within transactions. Ours is the commit
# LSN (20 digits) and the change's place in its transaction (15 digits): 35 digits that sort as
# text and as numbers. Full-load rows carry all zeros, below every change.
CHANGE_SEQUENCE_COLUMN = "ar_h_change_seq"
LOAD_SEQUENCE = "0" * 35
OP_COLUMN = "Op"

PARTITION_SEQUENCES = {
    "YYYYMMDD": ("%Y", "%m", "%d"),
    "YYYYMMDDHH": ("%Y", "%m", "%d", "%H"),
    "YYYYMM": ("%Y", "%m"),
    "MMYYYYDD": ("%m", "%Y", "%d"),
    "DDMMYYYY": ("%d", "%m", "%Y"),
}
PARTITION_DELIMITERS = {"SLASH": "/", "DASH": "-", "UNDERSCORE": "_", "NONE": ""}


@dataclass(frozen=True)
class S3Target:
    data_format: str = "parquet"  # DataFormat: parquet or csv
    compression_type: str = "NONE"  # CompressionType: GZIP or NONE (.csv.gz; inside Parquet)
    parquet_version: str = "parquet-2-0"
    # Parquet TIMESTAMP columns in milliseconds: what Athena and Glue read.
    parquet_timestamp_in_millisecond: bool = True
    include_op_for_full_load: bool = True
    # A STRING column, yyyy-MM-dd HH:mm:ss.SSSSSS (UTC): the commit time of a change, and for
    # full-load rows the task's start time (UseTaskStartTimeForFullLoadTimestamp), which comes
    # before every change captured after the snapshot.
    timestamp_column_name: str = "dms_commit_ts"
    use_task_start_time_for_full_load_timestamp: bool = True
    # CSV only: a header line, the delimiters, how NULL is written (so that it differs from an
    # empty string, which DMS writes as an empty field), and RFC 4180 quoting.
    add_column_name: bool = True
    csv_delimiter: str = ","
    csv_row_delimiter: str = "\n"
    csv_null_value: str = "\\N"
    rfc4180: bool = True
    date_partition_enabled: bool = True
    date_partition_sequence: str = "YYYYMMDD"
    date_partition_delimiter: str = "SLASH"
    date_partition_timezone: str = "UTC"
    # A CDC file is written when the first of these is reached: seconds since its first change,
    # or its size in KB.
    cdc_max_batch_interval: int = 60
    cdc_min_file_size: int = 32000
    # Full-load files are split at this size in KB (LOAD00000001, LOAD00000002, …).
    max_file_size: int = 1_048_576
    # Parquet rows per row group.
    row_group_length: int = 10_024

    def __post_init__(self):
        problems = []
        if self.data_format not in ("parquet", "csv"):
            problems.append(f"DataFormat {self.data_format!r} (parquet or csv)")
        if self.compression_type not in ("GZIP", "NONE"):
            problems.append(f"CompressionType {self.compression_type!r} (GZIP or NONE)")
        if self.date_partition_sequence not in PARTITION_SEQUENCES:
            problems.append(f"DatePartitionSequence {self.date_partition_sequence!r}")
        if self.date_partition_delimiter not in PARTITION_DELIMITERS:
            problems.append(f"DatePartitionDelimiter {self.date_partition_delimiter!r}")
        if len(self.csv_delimiter) != 1 or self.csv_delimiter in '"\n\r':
            problems.append(f"CsvDelimiter {self.csv_delimiter!r} (one character)")
        if self.csv_row_delimiter not in ("\n", "\r\n"):
            problems.append(f"CsvRowDelimiter {self.csv_row_delimiter!r} (\\n or \\r\\n)")
        if not 1 <= self.max_file_size <= 1_048_576:
            problems.append(f"MaxFileSize {self.max_file_size} (1 to 1048576 KB)")
        if self.cdc_max_batch_interval < 1 or self.cdc_min_file_size < 1:
            problems.append("CdcMaxBatchInterval and CdcMinFileSize must be positive")
        if self.row_group_length < 1:
            problems.append(f"RowGroupLength {self.row_group_length}")
        try:
            ZoneInfo(self.date_partition_timezone)
        except Exception:
            problems.append(f"DatePartitionTimezone {self.date_partition_timezone!r}")
        if problems:
            raise TargetSettingsError("unusable S3 target settings: " + "; ".join(problems))

    # --- as DMS is told ---------------------------------------------------------------------

    def s3_settings(self) -> dict:
        """The endpoint's S3Settings, as the DMS API and `aws dms create-endpoint` take them."""
        return {name: getattr(self, field) for field, name in SETTING_NAMES.items()}

    @classmethod
    def from_s3_settings(cls, settings: dict) -> "S3Target":
        unknown = set(settings) - set(SETTING_NAMES.values())
        if unknown:
            raise TargetSettingsError(f"unknown S3 settings: {', '.join(sorted(unknown))}")
        by_name = {name: field for field, name in SETTING_NAMES.items()}
        return cls(**{by_name[name]: value for name, value in settings.items()})

    def terraform_arguments(self) -> dict:
        """The same settings as arguments of an `aws_dms_s3_endpoint` resource (the AWS
        provider spells one of them rfc_4180)."""
        return {
            "rfc_4180" if name == "rfc4180" else name: value for name, value in asdict(self).items()
        }

    # --- file names and folders ---------------------------------------------------------------

    @property
    def suffix(self) -> str:
        if self.data_format == "csv":
            return ".csv.gz" if self.compression_type == "GZIP" else ".csv"
        return ".parquet"

    def partition(self, moment: datetime) -> str:
        """The date folder of a moment ('' without date partitioning)."""
        if not self.date_partition_enabled:
            return ""
        local = moment.astimezone(ZoneInfo(self.date_partition_timezone))
        parts = [local.strftime(part) for part in PARTITION_SEQUENCES[self.date_partition_sequence]]
        return PARTITION_DELIMITERS[self.date_partition_delimiter].join(parts)

    def load_name(self, number: int) -> str:
        """LOAD00000001, … LOAD00000009, LOAD0000000A: DMS counts full-load files in hex."""
        return f"LOAD{number:08X}{self.suffix}"

    def change_name(self, first_commit: datetime, first_lsn: int, last_lsn: int) -> str:
        """DMS names a CDC file by time (20141029-1134010000); ours adds the batch's commit LSN
        range, so that a restart writes the same batch under the same name, never a second
        copy, and a file left by an unfinished batch can be told apart and removed."""
        stamp = first_commit.astimezone(ZoneInfo("UTC")).strftime("%Y%m%d-%H%M%S%f")[:-2]
        return f"{stamp}-{first_lsn:016X}-{last_lsn:016X}{self.suffix}"


SETTING_NAMES = {
    "data_format": "DataFormat",
    "compression_type": "CompressionType",
    "parquet_version": "ParquetVersion",
    "parquet_timestamp_in_millisecond": "ParquetTimestampInMillisecond",
    "include_op_for_full_load": "IncludeOpForFullLoad",
    "timestamp_column_name": "TimestampColumnName",
    "use_task_start_time_for_full_load_timestamp": "UseTaskStartTimeForFullLoadTimestamp",
    "add_column_name": "AddColumnName",
    "csv_delimiter": "CsvDelimiter",
    "csv_row_delimiter": "CsvRowDelimiter",
    "csv_null_value": "CsvNullValue",
    "rfc4180": "Rfc4180",
    "date_partition_enabled": "DatePartitionEnabled",
    "date_partition_sequence": "DatePartitionSequence",
    "date_partition_delimiter": "DatePartitionDelimiter",
    "date_partition_timezone": "DatePartitionTimezone",
    "cdc_max_batch_interval": "CdcMaxBatchInterval",
    "cdc_min_file_size": "CdcMinFileSize",
    "max_file_size": "MaxFileSize",
    "row_group_length": "RowGroupLength",
}
assert set(SETTING_NAMES) == {field.name for field in fields(S3Target)}


def change_range(name: str) -> tuple[int, int] | None:
    """The (first, last) commit LSN of a change file's batch, from its name; None for a LOAD
    file or anything else."""
    parts = name.split(".", 1)[0].split("-")
    if len(parts) != 4 or len(parts[2]) != 16 or len(parts[3]) != 16:
        return None
    try:
        return int(parts[2], 16), int(parts[3], 16)
    except ValueError:
        return None


def lsn_number(lsn: str) -> int:
    """'16/B374D848' -> its 64-bit position."""
    high, low = lsn.split("/")
    return (int(high, 16) << 32) + int(low, 16)


def lsn_text(number: int) -> str:
    return f"{number >> 32:X}/{number & 0xFFFFFFFF:X}"


def change_sequence(commit_lsn: int, position: int) -> str:
    return f"{commit_lsn:020d}{position:015d}"
