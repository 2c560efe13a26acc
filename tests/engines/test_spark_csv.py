"""A CSV capture applied by Spark: empty strings stay empty strings (Spark takes an unquoted
empty field for NULL), NULLs stay NULL, and the tables equal the source."""

import pytest
from django.db import connection

from tests.engines.conftest import shop_capture
from tests.engines.test_spark_apply import apply, assert_same_as_source

pytestmark = [pytest.mark.engines, pytest.mark.django_db]


@pytest.fixture(scope="module")
def capture(tmp_path_factory, django_db_setup, django_db_blocker):
    folder = tmp_path_factory.mktemp("engines-csv") / "capture"
    with shop_capture(folder, "csv", django_db_blocker) as captured:
        yield captured


@pytest.mark.parametrize("table_format", ["delta", "iceberg"])
def test_a_csv_capture_keeps_empty_strings_and_nulls(
    spark, capture, database, tmp_path, table_format
):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FILTER (WHERE referrer = ''), count(*) FILTER (WHERE order_id IS NULL) "
            "FROM core_event"
        )
        empty, null = cursor.fetchone()
    assert empty > 100 and null > 100  # both kinds are there to lose
    warehouse = tmp_path / "warehouse"
    assert "(Spark, local[2])" in apply(capture, warehouse, table_format, "spark")
    assert_same_as_source(database, warehouse)
