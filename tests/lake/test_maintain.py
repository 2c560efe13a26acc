"""lakehouse_maintain and the layout it keeps: appends that rewrite nothing, partitions compacted
one at a time, tombstones dropped only when no file can bring their key back, history expired;
all of it through kills at each step and an apply committing meanwhile."""

import io
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from deltalake import DeltaTable
from deltalake.exceptions import DeltaError
from django.core.management import CommandError, call_command
from django.db import connection

from core.capture.reader import open_capture
from core.errors import LakeError
from core.lake import maintain
from core.lake.layout import lake_schema
from core.lake.maintain import maintain_warehouse
from core.lake.warehouse import WAREHOUSE_RECORD, open_stores
from core.models import Product, Tenant
from core.simulation.runner import simulate
from core.storage import location
from tests.factories import ProductFactory
from tests.lake.test_apply import apply_to, assert_same, captured, drain, pair, table_format

pytestmark = pytest.mark.django_db(transaction=True)
__all__ = ["pair", "table_format"]  # fixtures shared with test_apply


@pytest.fixture
def capture(pair, tmp_path) -> Iterator[Path]:
    """Two batches of changes are enough here: versions, deletes and tombstones."""
    yield from captured(pair, tmp_path, rounds=2)


def store_of(capture: Path, warehouse: Path, name: str, table_format: str):
    found, tables = open_capture(location(capture))
    store = open_stores(location(warehouse), table_format)(
        name, lake_schema(tables[name].table, found.target)
    )
    store.taken()
    return store


def stored_rows(store) -> tuple[int, int, int]:
    """Versions stored, keys, tombstones among the keys' newest versions."""
    duck = duckdb.connect()
    store.register(duck, "current")
    stored = duck.execute("SELECT count(*) FROM current_stored").fetchone()[0]
    keys, tombstones = duck.execute(
        "SELECT count(*), count(*) FILTER (WHERE _tombstone) FROM current"
    ).fetchone()
    return stored, keys, tombstones


def tombstones_of(store) -> list[tuple]:
    duck = duckdb.connect()
    store.register(duck, "current")
    return duck.execute("SELECT * FROM current WHERE _tombstone").fetchall()


def maintain_now(warehouse: Path, **options):
    """Maintenance that keeps no history and no grace: everything that can go, goes."""
    return maintain_warehouse(
        location(warehouse), retain_hours=0, tombstone_grace_hours=0, **options
    )


def test_maintenance_compacts_drops_tombstones_and_keeps_the_source(
    capture, tmp_path, table_format
):
    warehouse = tmp_path / "warehouse"
    apply_to(capture, warehouse, table_format)
    orders = store_of(capture, warehouse, "core_order", table_format)
    before = stored_rows(orders)
    assert before[0] > before[1]  # versions of updated orders were appended
    files_before = sum(map(len, orders.partitions().values()))

    report = maintain_now(warehouse)
    assert_same(capture, warehouse)
    orders = store_of(capture, warehouse, "core_order", table_format)
    stored, keys, tombstones = stored_rows(orders)
    assert stored == keys == before[1] - before[2]  # one version per key, no tombstone left
    assert tombstones == 0 and report["core_order"].tombstones_dropped == before[2] > 0
    assert all(len(files) == 1 for files in orders.partitions().values())
    assert report["core_order"].files_before == files_before
    assert report["core_order"].files_expired >= files_before  # the old files are gone
    if table_format == "delta":  # read by delta-rs itself as well as through our views
        assert DeltaTable(str(warehouse / "core_order")).to_pyarrow_dataset().count_rows() == keys
    else:
        assert orders.table.scan().to_arrow().num_rows == keys

    simulate(seed=21, rate=0, count=300)  # the tables go on taking changes, deletes too
    drain(capture)
    apply_to(capture, warehouse, table_format)
    young = maintain_warehouse(location(warehouse), retain_hours=0, tombstone_grace_hours=24)
    assert sum(table.tombstones_dropped for table in young.values()) == 0  # the grace period
    assert sum(table.partitions for table in young.values()) > 0
    assert_same(capture, warehouse)
    again = maintain_now(warehouse)
    assert sum(table.tombstones_dropped for table in again.values()) > 0
    assert_same(capture, warehouse)


def partition_files(store) -> dict[str, set[str]]:
    return {bucket: set(files) for bucket, files in store.partitions().items()}


def test_a_batch_in_one_partition_rewrites_nothing_and_maintenance_only_that_partition(
    capture, tmp_path, table_format
):
    warehouse = tmp_path / "warehouse"
    apply_to(capture, warehouse, table_format)
    maintain_now(warehouse)
    products = store_of(capture, warehouse, "core_product", table_format)
    compacted = partition_files(products)
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE core_product SET stock_quantity = stock_quantity + 1 "
            "WHERE id::text LIKE 'a%%' RETURNING id"
        )
        assert cursor.rowcount > 0
    drain(capture)
    apply_to(capture, warehouse, table_format)
    products = store_of(capture, warehouse, "core_product", table_format)
    applied = partition_files(products)
    for bucket, files in compacted.items():
        assert files <= applied[bucket]  # the apply removed no file: it appended
    assert {b for b in applied if applied[b] != compacted.get(b)} == {"a"}
    if table_format == "iceberg":
        summary = products.table.current_snapshot().summary
        assert summary.operation.value == "append"
        assert summary.additional_properties.get("deleted-data-files", "0") == "0"

    report = maintain_now(warehouse)
    assert report["core_product"].partitions == 1
    products = store_of(capture, warehouse, "core_product", table_format)
    after = partition_files(products)
    assert {b for b in after if after[b] != applied[b]} == {"a"}  # counted from the table
    assert_same(capture, warehouse)


def late_file_and_its_delete(capture: Path, tmp_path: Path) -> tuple[Path, Path, str]:
    """A product changed in one batch and deleted in a later one; the capture's copy without
    the first batch's file of core_product (it is late). The copy, the late file, the key."""
    product = ProductFactory(tenant=Tenant.objects.order_by("name").first(), sku="LATE-000001")
    drain(capture)
    product_files = set((capture / "public" / "core_product").rglob("2*.*"))
    Product.objects.filter(pk=product.pk).update(stock_quantity=3)  # the late file's change
    drain(capture)
    (late,) = set((capture / "public" / "core_product").rglob("2*.*")) - product_files
    Product.objects.filter(pk=product.pk).delete()
    drain(capture)
    delivered = tmp_path / "delivered"
    shutil.copytree(capture, delivered)
    (delivered / late.relative_to(capture)).unlink()
    return delivered, late, str(product.pk)


def test_a_tombstone_stays_while_a_file_that_could_bring_its_key_back_is_not_applied(
    capture, tmp_path, table_format
):
    delivered, late, key = late_file_and_its_delete(capture, tmp_path)
    warehouse = tmp_path / "warehouse"
    apply_to(delivered, warehouse, table_format)
    shutil.copy(late, delivered / late.relative_to(capture))  # arrived, not applied yet
    report = maintain_now(warehouse)
    assert "core_product" in report
    products = store_of(delivered, warehouse, "core_product", table_format)
    duck = duckdb.connect()
    products.register(duck, "current")
    assert duck.execute("SELECT _tombstone FROM current WHERE id = ?", [key]).fetchall() == [
        (True,)
    ]
    apply_to(delivered, warehouse, table_format)  # the late file cannot bring it back
    assert_same(capture, warehouse)

    maintain_now(warehouse)  # now every file is applied: the tombstone goes
    products = store_of(delivered, warehouse, "core_product", table_format)
    duck = duckdb.connect()
    products.register(duck, "current")
    assert duck.execute("SELECT count(*) FROM current WHERE id = ?", [key]).fetchone()[0] == 0
    assert duck.execute("SELECT count(*) FROM current WHERE _tombstone").fetchone()[0] == 0
    shutil.copy(late, delivered / late.relative_to(capture))  # delivered once more
    apply_to(delivered, warehouse, table_format)
    assert_same(capture, warehouse)


WINDOWS = ["while-writing-a-partition", "between-tables", "before-expiry", "while-expiring"]


def test_a_kill_during_maintenance_leaves_a_readable_table(
    capture, tmp_path, monkeypatch, table_format
):
    """Killed at each step in turn, with new changes applied before each run: the tables
    equal the source throughout, and the last, whole run finishes the job."""
    warehouse = tmp_path / "warehouse"
    apply_to(capture, warehouse, table_format)
    for round_number, window in enumerate(WINDOWS):
        with monkeypatch.context() as patches:
            kill = KillAt(window, patches, table_format)
            with pytest.raises((Killed, DeltaError)) as killed:  # delta-rs wraps it
                maintain_now(warehouse)
            assert kill.fired, (window, killed.value)
        assert_same(capture, warehouse)
        simulate(seed=31 + round_number, rate=0, count=100)  # new work before the next run
        drain(capture)
        apply_to(capture, warehouse, table_format)
    report = maintain_now(warehouse)
    assert_same(capture, warehouse)
    for name in ("core_order", "core_event"):
        store = store_of(capture, warehouse, name, table_format)
        stored, keys, tombstones = stored_rows(store)
        assert stored == keys and tombstones == 0, (report[name], tombstones_of(store))


class Killed(KeyboardInterrupt):
    pass


class KillAt:
    def __init__(self, window: str, monkeypatch, table_format: str):
        self.fired = False
        if window == "while-writing-a-partition":
            real = maintain.compact_table

            def killing(rows):
                for batch in rows:
                    yield batch  # the first batch is written, then the process dies
                    break
                self.fired = True
                raise Killed

            def compact_table(store, *args):
                real_replace = type(store).replace_partitions

                def replace_partitions(partitions, *rest):
                    def cut(rows):
                        return lambda: pa.RecordBatchReader.from_batches(
                            store.schema, killing(rows())
                        )

                    cut_short = [(bucket, cut(rows)) for bucket, rows in partitions]
                    return real_replace(store, cut_short, *rest)

                store.replace_partitions = replace_partitions
                return real(store, *args)

            monkeypatch.setattr(maintain, "compact_table", compact_table)
        elif window == "between-tables":
            real = maintain.compact_table
            replaced = []

            def compact_table(store, *args):
                real_replace = type(store).replace_partitions

                def replace_partitions(*inner):
                    if replaced:
                        self.fired = True
                        raise Killed
                    replaced.append(real_replace(store, *inner))

                store.replace_partitions = replace_partitions
                return real(store, *args)

            monkeypatch.setattr(maintain, "compact_table", compact_table)
        elif window == "before-expiry":
            real = maintain.compact_table

            def compact_table(store, *args):
                real(store, *args)
                self.fired = True
                raise Killed

            monkeypatch.setattr(maintain, "compact_table", compact_table)
        else:
            real = maintain.compact_table

            def compact_table(store, *args):
                real(store, *args)
                if table_format == "delta":
                    real_vacuum = DeltaTable.vacuum

                    def vacuum(table, **options):
                        found = real_vacuum(table, **{**options, "dry_run": True})
                        root = Path(table.table_uri.removeprefix("file://"))
                        for path in found[: len(found) // 2]:  # killed half way
                            # delta-rs lists what an earlier vacuum deleted too (the log keeps
                            # their removal), so some are gone already
                            (root / path).unlink(missing_ok=True)
                        self.fired = True
                        raise Killed

                    monkeypatch.setattr(DeltaTable, "vacuum", vacuum)
                else:

                    def load():
                        table = type(store).load(store)
                        real_delete = table.io.delete

                        def delete(path):
                            real_delete(path)
                            self.fired = True
                            raise Killed

                        table.io.delete = delete
                        return table

                    store.load = load

            monkeypatch.setattr(maintain, "compact_table", compact_table)


def test_an_apply_that_commits_during_maintenance_wins_and_maintenance_plans_again(
    capture, tmp_path, monkeypatch, table_format
):
    warehouse = tmp_path / "warehouse"
    apply_to(capture, warehouse, table_format)
    simulate(seed=41, rate=0, count=200)
    drain(capture)
    real = maintain.compact_table
    tried, replaced = [], []

    def compact_table(store, *args):
        real_replace = type(store).replace_partitions

        def replace_partitions(*inner):
            tried.append(store.name)
            if store.name == "core_order" and tried.count("core_order") == 1:
                apply_to(capture, warehouse, table_format)  # commits first
            real_replace(store, *inner)
            replaced.append(store.name)

        store.replace_partitions = replace_partitions
        return real(store, *args)

    monkeypatch.setattr(maintain, "compact_table", compact_table)
    maintain_now(warehouse)
    assert_same(capture, warehouse)
    # Refused when the apply had committed first, then planned again and done.
    assert tried.count("core_order") == 2 and replaced.count("core_order") == 1


def test_an_old_layout_is_refused_with_how_to_rebuild(capture, tmp_path, table_format):
    warehouse = tmp_path / "warehouse"
    apply_to(capture, warehouse, table_format)
    record = json.loads((warehouse / WAREHOUSE_RECORD).read_text())
    del record["layout"]
    (warehouse / WAREHOUSE_RECORD).write_text(json.dumps(record))
    for command, args in (
        ("lakehouse_apply", [str(capture), "--warehouse", str(warehouse),
                             "--table-format", table_format]),
        ("lakehouse_maintain", ["--warehouse", str(warehouse)]),
        ("lakehouse_verify", ["--warehouse", str(warehouse)]),
    ):  # fmt: skip
        with pytest.raises(CommandError, match=r"older lakehouse_apply.*rebuild") as error:
            call_command(command, *args, stdout=io.StringIO(), stderr=io.StringIO())
        assert "\n" not in str(error.value)
    with pytest.raises(LakeError):
        maintain_now(warehouse)


def test_bad_input_is_one_line(tmp_path):
    for args, expected in (
        (["--warehouse", str(tmp_path / "nowhere")], "holds no lakehouse tables"),
        (["--warehouse", str(tmp_path), "--retain-hours", "0"], "must be at least 1"),
    ):
        with pytest.raises(CommandError, match=expected) as error:
            call_command("lakehouse_maintain", *args, stdout=io.StringIO(), stderr=io.StringIO())
        assert "\n" not in str(error.value)
