"""The S3 target description: names, folders, settings round trips, and what it refuses."""

from datetime import UTC, datetime

import pytest

from core.capture.files import utc_timestamp
from core.capture.target import S3Target, change_range, change_sequence, lsn_number, lsn_text
from core.errors import TargetSettingsError

MOMENT = datetime(2026, 11, 26, 23, 30, 5, 123456, tzinfo=UTC)


def test_load_files_are_counted_in_hex_and_change_files_carry_their_lsn_range():
    target = S3Target()
    assert [target.load_name(n) for n in (1, 9, 10, 16)] == [
        "LOAD00000001.parquet",
        "LOAD00000009.parquet",
        "LOAD0000000A.parquet",
        "LOAD00000010.parquet",
    ]
    name = target.change_name(MOMENT, 0x3D96F510, 0x3DBBF120)
    assert name == "20261126-2330051234-000000003D96F510-000000003DBBF120.parquet"
    assert change_range(name) == (0x3D96F510, 0x3DBBF120)
    assert change_range("LOAD00000001.parquet") is None
    csv = S3Target(data_format="csv", compression_type="GZIP")
    assert csv.load_name(1) == "LOAD00000001.csv.gz"


def test_date_folders_follow_sequence_delimiter_and_zone():
    assert S3Target().partition(MOMENT) == "2026/11/26"
    assert S3Target(date_partition_sequence="YYYYMMDDHH").partition(MOMENT) == "2026/11/26/23"
    assert S3Target(date_partition_delimiter="DASH").partition(MOMENT) == "2026-11-26"
    assert S3Target(date_partition_timezone="Asia/Tokyo").partition(MOMENT) == "2026/11/27"
    assert S3Target(date_partition_enabled=False).partition(MOMENT) == ""


def test_settings_round_trip_through_the_dms_names():
    target = S3Target(data_format="csv", cdc_max_batch_interval=5)
    settings = target.s3_settings()
    assert settings["DataFormat"] == "csv" and settings["CdcMaxBatchInterval"] == 5
    assert S3Target.from_s3_settings(settings) == target
    assert target.terraform_arguments()["rfc_4180"] is True
    with pytest.raises(TargetSettingsError, match="unknown S3 settings: Bogus"):
        S3Target.from_s3_settings({**settings, "Bogus": 1})


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"data_format": "json"}, "DataFormat 'json'"),
        ({"date_partition_sequence": "YYYY"}, "DatePartitionSequence"),
        ({"csv_delimiter": ",,"}, "CsvDelimiter"),
        ({"max_file_size": 0}, "MaxFileSize 0"),
        ({"date_partition_timezone": "Mars/Olympus"}, "DatePartitionTimezone"),
    ],
)
def test_settings_dms_would_refuse_are_one_clear_line(settings, message):
    with pytest.raises(TargetSettingsError, match=message):
        S3Target(**settings)


def test_sequences_sort_as_text_and_as_numbers():
    earlier, later = change_sequence(0x3D96F510, 7), change_sequence(0x3D96F511, 1)
    assert len(earlier) == len(later) == 35
    assert earlier < later and int(earlier) < int(later)
    assert change_sequence(5, 1) < change_sequence(5, 2)
    assert lsn_text(lsn_number("16/B374D848")) == "16/B374D848"


def test_one_timestamp_format():
    assert utc_timestamp("2026-11-01 12:00:00+00") == "2026-11-01 12:00:00.000000"
    assert utc_timestamp("2026-11-01 12:00:00.12+00") == "2026-11-01 12:00:00.120000"
    assert utc_timestamp("2026-11-01 12:00:00.123456+00") == "2026-11-01 12:00:00.123456"
    assert utc_timestamp("2026-11-01 14:00:00.5+02") == "2026-11-01 12:00:00.500000"
    assert utc_timestamp("2026-11-01 12:00:00.5") == "2026-11-01 12:00:00.500000"
