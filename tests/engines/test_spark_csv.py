"""A CSV capture applied by Spark: empty strings stay empty strings (Spark takes an unquoted
empty field for NULL), NULLs stay NULL, and the tables equal the source."""

import pytest
from django.db import connection

from tests.engines.test_spark_apply import apply, assert_same_as_source

pytestmark = [pytest.mark.engines, pytest.mark.django_db]


@pytest.mark.parametrize("table_format", ["delta", "iceberg"])
def test_a_csv_capture_keeps_empty_strings_and_nulls(
    spark, captures, database, tmp_path, table_format
):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FILTER (WHERE referrer = ''), count(*) FILTER (WHERE order_id IS NULL) "
            "FROM core_event"
        )
        empty, null = cursor.fetchone()
    assert empty > 100 and null > 100  # both kinds are there to lose
    warehouse = tmp_path / "warehouse"
    assert "(Spark, local[2]" in apply(captures["csv"], warehouse, table_format, "spark")
    assert_same_as_source(database, warehouse)
