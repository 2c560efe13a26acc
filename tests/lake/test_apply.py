"""The capture applied to Delta and Iceberg tables and reconciled with the source, through
deliveries out of order and twice, a crash between two tables, and any grouping of files."""

import io
import random
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlglot
from deltalake.exceptions import DeltaError
from django.core.management import CommandError, call_command
from django.db import connection

from core.capture import reader
from core.capture.reader import open_capture
from core.errors import LakeError
from core.lake import apply
from core.lake.layout import lake_schema
from core.lake.query import SAMPLE_QUERIES
from core.lake.spark import spark_session
from core.lake.warehouse import open_stores
from core.replication.setup import setup_replication
from core.seeding.seed import seed_all
from core.simulation.runner import simulate
from core.storage import location
from core.verify.lake import verify_lake
from tests.conftest import NOW
from tests.lake.captures import PUBLICATION, capture_once, let_go
from tests.seeded import subprocess_environment
from tests.test_settings import ROOT

pytestmark = pytest.mark.django_db(transaction=True)


SLOT = "lake_tail"


def drain(folder: Path, *args: str) -> None:
    call_command(
        "cdc_tail", "--slot", SLOT, "--output", str(folder), *args,
        stdout=io.StringIO(), stderr=io.StringIO(),
    )  # fmt: skip


# (capture files, table format): each reader and each writer at least once.
PAIRS = [("parquet", "delta"), ("csv", "iceberg")]


@pytest.fixture(params=PAIRS, ids=["parquet-delta", "csv-iceberg"])
def pair(request) -> tuple[str, str]:
    return request.param


@pytest.fixture
def table_format(pair) -> str:
    return pair[1]


def captured(pair, tmp_path, rounds: int) -> Iterator[Path]:
    """A capture with a full load and `rounds` batches of simulated changes, erasures
    included (made once a session, a copy for each test: tests/lake/captures.py); the slot
    and publication dropped after."""

    def make(folder: Path) -> None:
        seed_all(scale="0.03", seed=51, now=NOW)
        with connection.cursor() as cursor:
            setup_replication(cursor, publication=PUBLICATION)
        drain(folder, "--data-format", pair[0])
        for round_number in range(rounds):
            simulate(seed=round_number, rate=0, count=300)
            drain(folder)

    yield capture_once((pair, rounds), tmp_path / "capture", SLOT, make)
    let_go(SLOT)


@pytest.fixture
def capture(pair, tmp_path) -> Iterator[Path]:
    yield from captured(pair, tmp_path, rounds=4)


def params() -> dict:
    return connection.get_connection_params()


def assert_same(capture: Path, warehouse: Path) -> None:
    reports = verify_lake(params(), location(warehouse))
    wrong = {name: report for name, report in reports.items() if not report.same}
    assert not wrong, wrong


def apply_to(capture: Path, warehouse: Path, table_format: str) -> None:
    apply.apply_capture(location(capture), location(warehouse), table_format=table_format)


def test_the_lakehouse_equals_the_source_and_a_rerun_applies_nothing(
    capture, tmp_path, table_format
):
    warehouse = tmp_path / "warehouse"
    out = io.StringIO()
    arguments = [str(capture), "--warehouse", str(warehouse), "--table-format", table_format]
    call_command("lakehouse_apply", *arguments, stdout=out)
    assert f"{table_format} tables" in out.getvalue()
    assert_same(capture, warehouse)
    out = io.StringIO()
    call_command("lakehouse_apply", *arguments, stdout=out)
    assert "nothing new" in out.getvalue()
    out = io.StringIO()
    call_command("lakehouse_verify", "--warehouse", str(warehouse), stdout=out)
    assert out.getvalue().strip().endswith("lakehouse = source")


def data_files(capture: Path) -> list[Path]:
    return [p for p in (capture / "public").rglob("*") if p.is_file()]


def test_files_delivered_out_of_order_and_twice_give_the_same_tables(
    capture, tmp_path, table_format
):
    """S3 delivers at least once and in no order: later changes first, the full load late,
    earlier changes after, some files again; deletes must not come back."""
    delivered = tmp_path / "delivered"
    delivered.mkdir()
    shutil.copy(capture / "capture.json", delivered)
    files = data_files(capture)
    random.Random(3).shuffle(files)
    warehouse = tmp_path / "warehouse"
    for start in range(0, len(files), max(1, len(files) // 4)):
        for path in files[start : start + max(1, len(files) // 4)] + files[:2]:
            target = delivered / path.relative_to(capture)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(path, target)
        apply_to(delivered, warehouse, table_format)
    assert len(data_files(delivered)) == len(files)
    assert_same(capture, warehouse)


def test_delivery_chaos_rounds_applied_one_by_one_give_the_source(capture, tmp_path, table_format):
    """deliver_chaos: shuffled, late, twice, and half-uploaded files under hidden names."""
    delivered, warehouse, lines = tmp_path / "delivered", tmp_path / "warehouse", []
    for _ in range(40):
        out = io.StringIO()
        call_command("deliver_chaos", str(capture), str(delivered), "--seed", "4", stdout=out)
        lines.append(out.getvalue())
        apply_to(delivered, warehouse, table_format)
        if "everything delivered" in out.getvalue():
            break
    assert "everything delivered" in lines[-1] and len(lines) > 3
    assert any(" 0 again" not in line for line in lines)
    assert any(" 0 still uploading" not in line for line in lines)
    assert_same(capture, warehouse)


def test_a_crash_between_two_tables_merges_applies_nothing_twice(
    capture, tmp_path, monkeypatch, table_format
):
    warehouse = tmp_path / "warehouse"
    real, applied = apply.apply_table, []

    def crash_after_three(store, files, target, capture_id, done):
        if len(applied) == 3:
            raise KeyboardInterrupt  # killed between two tables
        applied.append(files.table.name)
        return real(store, files, target, capture_id, done)

    monkeypatch.setattr(apply, "apply_table", crash_after_three)
    with pytest.raises(KeyboardInterrupt):
        apply_to(capture, warehouse, table_format)
    monkeypatch.undo()
    simulate(seed=9, rate=0, count=200)  # new work before the rerun
    drain(capture)
    apply_to(capture, warehouse, table_format)
    assert_same(capture, warehouse)


def test_a_full_load_file_after_the_changes_is_appended_through_a_crash(
    capture, tmp_path, monkeypatch, table_format
):
    """A full-load file delivered late is appended a chunk at a time in one commit: killed
    between two chunks, with new changes arriving meanwhile, the rerun still gives the source
    (its rows are older than every change)."""
    delivered = tmp_path / "delivered"

    def deliver(loads: bool) -> None:
        for path in data_files(capture):
            if path.name.startswith("LOAD") == loads:
                target = delivered / path.relative_to(capture)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, target)
        shutil.copy(capture / "capture.json", delivered)

    warehouse = tmp_path / "warehouse"
    deliver(loads=False)
    apply_to(delivered, warehouse, table_format)
    deliver(loads=True)
    monkeypatch.setattr(reader, "CHUNK_ROWS", 1000)
    real, chunks = apply.as_lake_rows, []

    def killed_at_the_third_chunk(rows, schema):
        chunks.append(rows.num_rows)
        if len(chunks) == 3:
            raise KeyboardInterrupt
        return real(rows, schema)

    monkeypatch.setattr(apply, "as_lake_rows", killed_at_the_third_chunk)
    with pytest.raises((KeyboardInterrupt, DeltaError)):  # delta-rs reports it as its own
        apply_to(delivered, warehouse, table_format)
    monkeypatch.setattr(apply, "as_lake_rows", real)
    assert 1000 in chunks  # a file was split
    simulate(seed=11, rate=0, count=200)  # new work before the rerun
    drain(capture)
    deliver(loads=False)
    apply_to(delivered, warehouse, table_format)
    assert_same(capture, warehouse)


def table_state(capture: Path, warehouse: Path, name: str, table_format: str) -> pa.Table:
    found, tables = open_capture(location(capture))
    store = open_stores(location(warehouse), table_format)(
        name, lake_schema(tables[name].table, found.target)
    )
    store.taken()
    duck = duckdb.connect()
    store.register(duck, "current")  # the newest version of each key
    return duck.execute("SELECT * FROM current ORDER BY id").to_arrow_table()


def test_the_result_does_not_depend_on_how_files_are_grouped(
    capture, tmp_path, monkeypatch, table_format
):
    apply_to(capture, tmp_path / "grouped", table_format)
    monkeypatch.setattr(apply, "FILES_PER_COMMIT", 1)
    apply_to(capture, tmp_path / "one_by_one", table_format)
    for name in ("core_order", "core_event", "core_customer"):
        assert table_state(capture, tmp_path / "grouped", name, table_format).equals(
            table_state(capture, tmp_path / "one_by_one", name, table_format)
        )


def test_bad_input_is_one_line_and_applies_nothing(capture, tmp_path, table_format, monkeypatch):
    warehouse = tmp_path / "warehouse"

    def fails(folder: Path, into: Path = warehouse, fmt: str = table_format, *more: str) -> str:
        with pytest.raises(CommandError) as error:
            call_command(
                "lakehouse_apply", str(folder), "--warehouse", str(into), "--table-format", fmt,
                *more,
            )  # fmt: skip
        assert "\n" not in str(error.value)
        return str(error.value)

    assert "give it with --engine spark" in fails(
        capture, warehouse, table_format, "--master", "local[1]"
    )
    if spark_session.cache_info().currsize == 0:  # no JVM of this session's yet
        monkeypatch.setenv("LAKEHOUSE_ENGINES", str(tmp_path / "no-engines"))
        assert "run `make engines`" in fails(capture, warehouse, table_format, "--engine", "spark")
        monkeypatch.delenv("LAKEHOUSE_ENGINES")

    assert "is not a folder" in fails(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    assert "is not a capture: it has no capture.json" in fails(tmp_path / "empty")
    stray = capture / "public/core_order/stray.json"
    stray.write_text("{}")
    assert "disagrees with the capture's settings" in fails(capture)
    stray.unlink()
    # A file with a column the capture's schema does not have (cdc_tail records an added
    # column in capture.json before it writes one).
    first = sorted(p for p in (capture / "public/core_order").rglob("2*") if p.is_file())[0]
    # Named as a later batch within what capture.json records (an unrecorded one is not read).
    grown = first.with_name(f"29991231-0000000000{first.name[19:]}")
    text = first.read_text() if first.suffix == ".csv" else None
    if text is not None:
        grown.write_text(text.replace(",ar_h_change_seq", ",ar_h_change_seq,loyalty_tier", 1))
    else:
        rows = pq.read_table(first)
        pq.write_table(rows.append_column("loyalty_tier", pa.array(["x"] * rows.num_rows)), grown)
    message = fails(capture)
    assert "does not have the capture's columns" in message and "loyalty_tier" in message
    grown.unlink()
    assert not warehouse.exists()
    other_format = "iceberg" if table_format == "delta" else "delta"
    apply_to(capture, tmp_path / "other_format", other_format)
    assert f"holds {other_format} tables: use --table-format {other_format}" in fails(
        capture, tmp_path / "other_format"
    )
    other = tmp_path / "other"
    shutil.copytree(capture, other)
    text = (other / "capture.json").read_text().replace('"snapshot_lsn": "', '"snapshot_lsn": "1')
    (other / "capture.json").write_text(text)
    apply_to(capture, warehouse, table_format)
    assert "built from another capture" in fails(other)
    with pytest.raises(LakeError, match="holds no lakehouse tables"):
        verify_lake(params(), location(tmp_path / "none"))


def test_the_readme_queries_answer_the_same_on_the_lake_and_the_source(
    capture, tmp_path, table_format
):
    warehouse = tmp_path / "warehouse"
    apply_to(capture, warehouse, table_format)
    out = io.StringIO()
    call_command("lakehouse_query", "--warehouse", str(warehouse), stdout=out)
    assert out.getvalue().count(": same answer\n") == 4
    assert "all 4 queries give the same answer on both sides" in out.getvalue()
    own = "SELECT status, count(*) AS orders FROM core_order GROUP BY 1 ORDER BY 1"
    out = io.StringIO()  # an analyst's own query: the current state, deleted keys left out
    call_command("lakehouse_query", "--warehouse", str(warehouse), "--sql", own, stdout=out)
    with connection.cursor() as cursor:
        cursor.execute(own)
        expected = [f"{status}\t{count}" for status, count in cursor.fetchall()]
    assert out.getvalue().splitlines() == ["status\torders", *expected]
    with pytest.raises(CommandError, match=r"the query failed in DuckDB: .*nowhere") as error:
        call_command(
            "lakehouse_query", "--warehouse", str(warehouse), "--sql", "SELECT * FROM nowhere"
        )
    assert "\n" not in str(error.value)
    with connection.cursor() as cursor:  # the source moves on; the lake has not caught up
        cursor.execute("UPDATE core_tenant SET name = name || ' (renamed)'")
    with pytest.raises(CommandError, match="different answers: Revenue by tenant") as error:
        call_command("lakehouse_query", "--warehouse", str(warehouse), stdout=io.StringIO())
    assert error.value.returncode == 1


def test_the_queries_are_the_readmes_verbatim():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = readme.split("```sql\n", 1)[1].split("```", 1)[0]
    shown = [statement.strip() for statement in block.split(";") if statement.strip()]
    assert shown == [f"-- {title}\n{sql}" for title, sql in SAMPLE_QUERIES]


@pytest.mark.parametrize(
    "pair", [("parquet", "delta"), ("parquet", "iceberg")], indirect=True, ids=["delta", "iceberg"]
)
def test_the_exported_merge_run_in_duckdb_builds_the_same_tables(capture, tmp_path, pair):
    """The SQL handed over to Spark and Athena is proved here in its DuckDB form: run file by
    file over a Parquet capture (the format DMS is given), it builds exactly lakehouse_apply's
    tables, in a session whose time zone is not UTC (instants stay instants). The Spark and
    Athena forms are parsed here, and run in tests/engines."""
    out = tmp_path / "sql"
    call_command("lakehouse_export", str(capture), "--output", str(out), stdout=io.StringIO())
    _, tables = open_capture(location(capture))
    duck = duckdb.connect()
    duck.execute("SET TimeZone = 'America/New_York'")
    for name, files in tables.items():
        create, merge = (out / "duckdb" / f"{name}.sql").read_text().split(";\n\n")
        duck.execute(create)
        for path in files.ordered:
            duck.execute(f"CREATE OR REPLACE VIEW changes AS SELECT * FROM read_parquet('{path}')")
            duck.execute(merge)
    warehouse = tmp_path / "warehouse"
    apply_to(capture, warehouse, pair[1])
    for name in ("core_order", "core_event", "core_customer", "core_subscription"):
        ours = duck.execute(f"SELECT * FROM {name} ORDER BY id").to_arrow_table()
        theirs = table_state(capture, warehouse, name, pair[1])
        assert ours.num_rows == theirs.num_rows
        assert ours.cast(theirs.schema).equals(theirs)
    duck.execute((out / "duckdb" / "views.sql").read_text())  # the current state, to read
    with connection.cursor() as cursor:
        for name in ("core_order", "core_event", "core_customer"):
            cursor.execute(f"SELECT count(*), count(DISTINCT id) FROM {name}")
            found = duck.execute(f"SELECT count(*), count(DISTINCT id) FROM {name}_current")
            assert found.fetchone() == cursor.fetchone()
    for engine, dialect in (("spark", "spark"), ("athena", "athena")):
        for path in (out / engine).glob("*.sql"):
            for statement in path.read_text().split(";\n\n"):
                sqlglot.parse_one(statement.rstrip(";\n"), read=dialect)
    compile((out / "glue_job.py").read_text(), "glue_job.py", "exec")


@pytest.mark.parametrize("pair", PAIRS[:1], indirect=True, ids=["parquet-delta"])
def test_the_exported_sql_names_the_catalog_given_and_refuses_a_bad_one(capture, tmp_path):
    out = tmp_path / "sql"
    arguments = ["lakehouse_export", str(capture), "--output", str(out)]
    call_command(*arguments, "--catalog", "my_lake", stdout=io.StringIO())
    spark_sql = (out / "spark" / "views.sql").read_text() + (out / "glue_job.py").read_text()
    assert "my_lake.lakehouse.core_order_current" in spark_sql
    assert "CREATE NAMESPACE IF NOT EXISTS my_lake." in spark_sql
    assert "glue_catalog" not in spark_sql
    assert not (out / "spark" / "delta_views.sql").exists()  # only with --warehouse
    done = subprocess.run(
        [sys.executable, "manage.py", *arguments[:2], "--output", str(tmp_path / "bad"),
         "--catalog", "my-lake"],
        cwd=ROOT, capture_output=True, text=True, env=subprocess_environment(),
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert done.stderr.endswith(
        "argument --catalog: a name of letters, digits and _ (not starting with a digit), "
        "not 'my-lake'\n"
    )
    assert not (tmp_path / "bad").exists()
