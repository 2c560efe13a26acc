"""lakehouse_apply --engine spark against the in-process apply: one capture applied by delta-rs,
pyiceberg, Spark-Delta and Spark-Iceberg gives four tables equal to the source and to each
other, and a table is appended by either engine in turn."""

import io
import shutil
from pathlib import Path

import duckdb
import pytest
from django.core.management import call_command

from core.lake.layout import lake_schema
from core.lake.warehouse import open_stores, open_warehouse
from core.pipeline.status import warehouse_status
from core.storage import location
from core.verify.lake import verify_lake

# The shop is the session's, committed by its fixture; django_db makes the test database exist.
pytestmark = [pytest.mark.engines, pytest.mark.django_db]


def apply(capture: Path | str, warehouse: Path | str, table_format: str, engine: str) -> str:
    out = io.StringIO()
    call_command(
        "lakehouse_apply", str(capture), "--warehouse", str(warehouse),
        "--table-format", table_format, "--engine", engine, stdout=out,
    )  # fmt: skip
    return out.getvalue()


def assert_same_as_source(database, warehouse: Path | str) -> None:
    reports = verify_lake(database, location(warehouse))
    wrong = {name: report for name, report in reports.items() if not report.same}
    assert not wrong, wrong


def each_table(warehouse: Path | str, query: str) -> dict[str, list[tuple]]:
    """`query` (with {name}: the table's current state; {name}_stored: every version) run
    over each table of the warehouse, as lakehouse_verify reads them."""
    built = open_warehouse(location(warehouse))
    stores = open_stores(built.location, built.table_format)
    duck = duckdb.connect()
    if not built.location.is_local:
        built.location.settings.attach_to_duckdb(duck)
    found = {}
    for name, table in built.tables.items():
        store = stores(name, lake_schema(table, built.target))
        store.taken()
        store.register(duck, name)
        found[name] = duck.sql(query.format(name=name)).fetchall()
    duck.close()
    return found


def current_state(warehouse: Path | str) -> dict[str, list[tuple]]:
    """Each table's current state (tombstones included), every value as text."""
    return each_table(warehouse, "SELECT COLUMNS(*)::VARCHAR FROM {name} ORDER BY id")


def test_four_writers_give_the_same_tables(spark, capture, database, tmp_path):
    warehouses = {
        (table_format, engine): tmp_path / f"{table_format}-{engine}"
        for table_format in ("delta", "iceberg")
        for engine in ("python", "spark")
    }
    for (table_format, engine), warehouse in warehouses.items():
        out = apply(capture, warehouse, table_format, engine)
        assert "applied" in out, out
        assert ("(Spark, local[2]" in out) == (engine == "spark")
        assert_same_as_source(database, warehouse)
        assert "nothing new" in apply(capture, warehouse, table_format, engine)
    for table_format in ("delta", "iceberg"):
        shown = warehouse_status(str(warehouses[(table_format, "spark")]), {})  # the page
        assert len(shown.tables) == 8 and all(t.last_file for t in shown.tables), shown
    states = {key: current_state(warehouse) for key, warehouse in warehouses.items()}
    first = states[("delta", "python")]
    assert all(first.values())
    for key, state in states.items():
        for name, rows in state.items():
            assert rows == first[name], (key, name)


def deliver(capture: Path, delivered: Path, files: list[Path]) -> None:
    for path in files:
        target = delivered / path.relative_to(capture)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target)
    shutil.copy(capture / "capture.json", delivered)


def data_files(capture: Path) -> list[Path]:
    """Full load first, then changes in the order cdc_tail wrote them."""
    files = [p for p in (capture / "public").rglob("*") if p.is_file()]
    return sorted(files, key=lambda p: (not p.name.startswith("LOAD"), p.name))


def versions_applied_twice(warehouse: Path | str) -> int:
    """Rows of the stored versions that repeat a key's change (a file applied twice)."""
    counts = each_table(
        warehouse, "SELECT count(*) - count(DISTINCT (id, ar_h_change_seq)) FROM {name}_stored"
    )
    return sum(rows[0][0] for rows in counts.values())


@pytest.mark.parametrize("table_format", ["delta", "iceberg"])
def test_the_engines_take_turns_on_one_table(spark, capture, database, tmp_path, table_format):
    """Deliveries applied by Spark and by this process in turn: each takes only what the other
    has not, from the same commit records."""
    delivered, warehouse = tmp_path / "delivered", tmp_path / "warehouse"
    files = data_files(capture)
    thirds = [files[: len(files) // 3], files[len(files) // 3 : 2 * len(files) // 3], files]
    for portion, engine in zip(thirds, ["spark", "python", "spark"], strict=True):
        deliver(capture, delivered, portion)
        assert "applied" in apply(delivered, warehouse, table_format, engine)
    assert_same_as_source(database, warehouse)
    assert versions_applied_twice(warehouse) == 0
    assert "nothing new" in apply(delivered, warehouse, table_format, "python")


@pytest.mark.parametrize("table_format", ["delta", "iceberg"])
def test_a_spark_apply_killed_after_a_commit_applies_nothing_twice(
    spark, capture, database, tmp_path, monkeypatch, table_format
):
    """Killed right after Spark's second commit landed, before this process saw it, with new
    files delivered before the rerun: the rerun applies every file once."""
    from core.lake import spark as spark_module

    delivered, warehouse = tmp_path / "delivered", tmp_path / "warehouse"
    files = data_files(capture)
    deliver(capture, delivered, files[: len(files) // 2])
    real, commits = spark_module.SparkEngine.append, []

    def killed_after_the_second(self, store, rows, names, capture_id):
        added = real(self, store, rows, names, capture_id)
        commits.append(names)
        if len(commits) == 2:
            raise KeyboardInterrupt
        return added

    monkeypatch.setattr(spark_module.SparkEngine, "append", killed_after_the_second)
    with pytest.raises(KeyboardInterrupt):
        apply(delivered, warehouse, table_format, "spark")
    monkeypatch.undo()
    deliver(capture, delivered, files)
    assert "applied" in apply(delivered, warehouse, table_format, "spark")
    assert_same_as_source(database, warehouse)
    assert versions_applied_twice(warehouse) == 0


@pytest.mark.parametrize("table_format", ["delta", "iceberg"])
def test_spark_on_s3_through_s3a(spark, captures, database, s3_url, table_format):
    """A capture on the local S3 store applied by Spark (s3a://) into an s3:// warehouse, then
    by this process, which takes only what is new: the same tables, one history."""
    warehouse = f"{s3_url}/{table_format}"
    assert "(Spark, local[2]" in apply(captures["s3"], warehouse, table_format, "spark")
    assert_same_as_source(database, warehouse)
    assert "nothing new" in apply(captures["s3"], warehouse, table_format, "python")
    assert versions_applied_twice(warehouse) == 0
