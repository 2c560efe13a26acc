"""lakehouse_apply --engine spark against the in-process apply: one capture applied by delta-rs,
pyiceberg, Spark-Delta and Spark-Iceberg gives four tables equal to the source and to each
other, and a table is appended by either engine in turn."""

import io
from pathlib import Path

import duckdb
import pytest
from django.core.management import call_command

from core.lake.apply import open_stores, open_warehouse
from core.lake.tables import lake_schema
from core.lake.verify import verify_lake
from tests.engines.conftest import shop_capture

# The shop is the module's, committed by its fixture; django_db makes the test database exist.
pytestmark = [pytest.mark.engines, pytest.mark.django_db]


@pytest.fixture(scope="module")
def capture(tmp_path_factory, django_db_setup, django_db_blocker):
    with shop_capture(
        tmp_path_factory.mktemp("engines") / "capture", "parquet", django_db_blocker
    ) as folder:
        yield folder


def apply(capture: Path, warehouse: Path, table_format: str, engine: str) -> str:
    out = io.StringIO()
    call_command(
        "lakehouse_apply", str(capture), "--warehouse", str(warehouse),
        "--table-format", table_format, "--engine", engine, stdout=out,
    )  # fmt: skip
    return out.getvalue()


def assert_same_as_source(database, warehouse: Path) -> None:
    reports = verify_lake(database, warehouse)
    wrong = {name: report for name, report in reports.items() if not report.same}
    assert not wrong, wrong


def current_state(warehouse: Path) -> dict[str, list[tuple]]:
    """Each table's current state (tombstones included), as lakehouse_verify reads it."""
    built = open_warehouse(warehouse)
    stores = open_stores(built.location, built.table_format)
    duck = duckdb.connect()
    state = {}
    for name, table in built.tables.items():
        store = stores(name, lake_schema(table, built.target))
        store.taken()
        store.register(duck, name)
        state[name] = duck.sql(f"SELECT COLUMNS(*)::VARCHAR FROM {name} ORDER BY id").fetchall()
    duck.close()
    return state


def test_four_writers_give_the_same_tables(spark, capture, database, tmp_path):
    warehouses = {
        (table_format, engine): tmp_path / f"{table_format}-{engine}"
        for table_format in ("delta", "iceberg")
        for engine in ("python", "spark")
    }
    for (table_format, engine), warehouse in warehouses.items():
        out = apply(capture, warehouse, table_format, engine)
        assert "applied" in out, out
        assert ("(Spark, local[2])" in out) == (engine == "spark")
        assert_same_as_source(database, warehouse)
        assert "nothing new" in apply(capture, warehouse, table_format, engine)
    states = {key: current_state(warehouse) for key, warehouse in warehouses.items()}
    first = states[("delta", "python")]
    assert all(first.values())
    for key, state in states.items():
        for name, rows in state.items():
            assert rows == first[name], (key, name)
