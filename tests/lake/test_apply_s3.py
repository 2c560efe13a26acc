"""The lakehouse on a real S3 store (the local SeaweedFS): Delta (delta-rs, commits by
conditional PUT) and Iceberg (pyiceberg, its catalog in PostgreSQL) built from a capture on S3,
equal to the source; two applies at once, nothing applied twice or lost; chaos delivery into
S3; the manifest and the exported SQL on S3; one line for every S3 failure."""

import io
import json
import re
from collections import Counter
from collections.abc import Iterator

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from core.lake import apply
from core.lake.commits import FILES_KEY
from core.lake.iceberg import NAMESPACE, catalog_name, open_catalog
from core.lake.warehouse import WAREHOUSE_RECORD, open_warehouse
from core.replication.setup import setup_replication
from core.seeding.seed import seed_all
from core.simulation.runner import simulate
from core.storage import location
from core.verify.lake import verify_lake, verify_manifest
from tests.conftest import NOW, replicated_shop
from tests.lake.captures import PUBLICATION, capture_once, let_go
from tests.seeded import manage_py

pytestmark = pytest.mark.django_db(transaction=True)
SLOT = "lake_s3"


def drain(capture: str, *args: str) -> None:
    call_command(
        "cdc_tail", "--slot", SLOT, "--output", capture, *args,
        stdout=io.StringIO(), stderr=io.StringIO(),
    )  # fmt: skip


@pytest.fixture
def shop():
    with replicated_shop(seed=52):
        yield


@pytest.fixture(params=[("parquet", "delta"), ("csv", "iceberg")], ids=["delta", "iceberg"])
def pair(request) -> tuple[str, str]:
    return request.param


@pytest.fixture
def capture(s3_url, pair) -> Iterator[str]:
    """A capture on S3: a full load and three batches of simulated changes (made once a
    session, a copy for each test: tests/lake/captures.py)."""

    def make(url: str) -> None:
        seed_all(scale="0.03", seed=52, now=NOW)
        with connection.cursor() as cursor:
            setup_replication(cursor, publication=PUBLICATION)
        drain(url, "--data-format", pair[0])
        for round_number in range(3):
            simulate(seed=round_number, rate=0, count=200)
            drain(url)

    yield capture_once(("s3", pair), f"{s3_url}/cdc", SLOT, make)
    let_go(SLOT)


def assert_same(warehouse: str) -> None:
    reports = verify_lake(connection.get_connection_params(), location(warehouse))
    wrong = {name: report for name, report in reports.items() if not report.same}
    assert not wrong, wrong


def files_recorded(warehouse: str, table_format: str) -> Counter:
    """How many commits recorded each capture file, over every table of the warehouse."""
    counted = Counter()
    where = location(warehouse)
    if table_format == "delta":
        from deltalake import DeltaTable

        options = where.settings.delta_options()
        for name in open_warehouse(where).tables:
            table = DeltaTable(where.uri(name), storage_options=options)
            for commit in table.history():
                counted.update(f"{name}/{f}" for f in json.loads(commit.get(FILES_KEY, "[]")))
        return counted
    catalog = open_catalog(location(where))
    for _, name in catalog.list_tables(NAMESPACE):
        for snapshot in catalog.load_table((NAMESPACE, name)).snapshots():
            recorded = snapshot.summary.additional_properties.get(FILES_KEY, "[]")
            counted.update(f"{name}/{f}" for f in json.loads(recorded))
    return counted


def test_the_lakehouse_on_s3_equals_the_source(capture, s3_url, pair):
    warehouse = f"{s3_url}/lake"
    out = io.StringIO()
    arguments = [capture, "--warehouse", warehouse, "--table-format", pair[1]]
    call_command("lakehouse_apply", *arguments, stdout=out)
    assert f"{pair[1]} tables in {warehouse}" in out.getvalue()
    out = io.StringIO()
    call_command("lakehouse_verify", "--warehouse", warehouse, stdout=out)
    assert out.getvalue().strip().endswith("lakehouse = source")
    out = io.StringIO()
    call_command("lakehouse_query", "--warehouse", warehouse, stdout=out)
    assert "all 4 queries give the same answer on both sides" in out.getvalue()
    simulate(seed=7, rate=0, count=200)  # more changes, applied incrementally
    drain(capture)
    call_command("lakehouse_apply", *arguments, stdout=io.StringIO())
    assert_same(warehouse)
    assert max(files_recorded(warehouse, pair[1]).values()) == 1
    where = location(warehouse)
    assert where.exists(WAREHOUSE_RECORD)
    if pair[1] == "delta":
        assert any("/_delta_log/" in file.key for file in where.files("core_order"))
    else:  # registered in PostgreSQL under the warehouse's own catalog name
        name = catalog_name(where)  # the bucket and prefix as one identifier
        assert re.fullmatch(r"lakehouse_[a-z0-9_]+_lake", name), name
        assert ("lakehouse", "core_order") in open_catalog(location(where)).list_tables(NAMESPACE)


def test_an_apply_overtaken_by_another_plans_again_and_applies_nothing_twice(
    capture, s3_url, pair, monkeypatch
):
    """Between planning and committing, another apply commits the same files first (for the
    full load's append and for a merge of changes): the first apply's commit is refused, it
    plans again from what the table now holds, and no file is applied twice."""
    warehouse = f"{s3_url}/lake"
    overtaken = []

    def overtake() -> None:
        if not overtaken:  # once: the other apply runs to its end right here
            overtaken.append(True)
            apply.apply_capture(location(capture), location(warehouse), table_format=pair[1])

    def overtaking_after(real):
        def step(*args):
            found = real(*args)
            overtake()
            return found

        return step

    from core.lake.delta import DeltaStore
    from core.lake.iceberg import IcebergStore

    store = DeltaStore if pair[1] == "delta" else IcebergStore
    # Once the table is made (or found) and planned from, before the full load's append.
    monkeypatch.setattr(store, "writable", overtaking_after(store.writable))
    apply.apply_capture(location(capture), location(warehouse), table_format=pair[1])
    assert overtaken
    assert_same(warehouse)
    assert max(files_recorded(warehouse, pair[1]).values()) == 1
    monkeypatch.undo()
    simulate(seed=8, rate=0, count=200)
    drain(capture)
    overtaken.clear()
    # Once the batch is read, before its merge.
    monkeypatch.setattr(apply, "last_change_per_key", overtaking_after(apply.last_change_per_key))
    apply.apply_capture(location(capture), location(warehouse), table_format=pair[1])
    assert overtaken
    assert_same(warehouse)
    assert max(files_recorded(warehouse, pair[1]).values()) == 1


def test_two_applies_at_once_on_one_warehouse(capture, s3_url, pair):
    warehouse = f"{s3_url}/lake"
    arguments = ["lakehouse_apply", capture, "--warehouse", warehouse, "--table-format", pair[1]]
    both = [manage_py(*arguments), manage_py(*arguments)]
    results = [process.communicate(timeout=300) for process in both]
    for process, (_, err) in zip(both, results, strict=True):
        # Each ends well, or (beaten too often) with one line and nothing half applied.
        assert process.returncode == 0 or err.count("\n") == 1, err
        assert "Traceback" not in err
    call_command("lakehouse_apply", *arguments[1:], stdout=io.StringIO())
    assert_same(warehouse)
    assert max(files_recorded(warehouse, pair[1]).values()) == 1


@pytest.mark.parametrize("pair", [("parquet", "delta")], indirect=True, ids=["delta"])
def test_chaos_delivery_into_s3_applied_round_by_round_gives_the_source(capture, s3_url, pair):
    delivered, warehouse = f"{s3_url}/delivered", f"{s3_url}/lake"
    for _ in range(40):
        out = io.StringIO()
        call_command("deliver_chaos", capture, delivered, "--seed", "5", stdout=out)
        apply.apply_capture(location(delivered), location(warehouse), table_format="delta")
        if "everything delivered" in out.getvalue():
            break
    assert "everything delivered" in out.getvalue()
    assert_same(warehouse)
    hidden = [f for f in location(delivered).files("public") if f.name.startswith(".")]
    assert not hidden  # the uploads in progress all finished


@pytest.mark.parametrize("pair", [("parquet", "iceberg")], indirect=True, ids=["iceberg"])
def test_the_manifest_and_the_exported_sql_on_s3(shop, s3_url, pair, tmp_path):
    capture, warehouse = f"{s3_url}/cdc", f"{s3_url}/lake"
    drain(capture)
    out = io.StringIO()
    call_command(
        "simulate", "--scenario", "one-key-lifecycle", "--scenario-size", "0.05",
        "--manifest", f"{capture}/manifest.json", stdout=out,
    )  # fmt: skip
    assert f"{capture}/manifest.json" in out.getvalue()
    drain(capture, "--manifest")
    apply.apply_capture(location(capture), location(warehouse), table_format="iceberg")
    out = io.StringIO()
    call_command(
        "lakehouse_verify", "--warehouse", warehouse, "--manifest", f"{capture}/manifest.json",
        stdout=out,
    )  # fmt: skip
    assert out.getvalue().strip().endswith("tables = manifest")
    assert verify_manifest(location(capture), location(warehouse), "one-key-lifecycle").same
    call_command("lakehouse_export", capture, "--output", f"{s3_url}/sql", stdout=io.StringIO())
    written = {file.key for file in location(f"{s3_url}/sql").files()}
    assert {"glue_job.py", "spark/core_order.sql", "athena/core_order.sql"} <= written


@pytest.mark.parametrize("pair", [("parquet", "delta")], indirect=True, ids=["delta"])
def test_s3_failures_are_one_line_and_write_nothing(capture, s3_url, pair, monkeypatch):
    warehouse = f"{s3_url}/lake"

    def fails(*arguments: str) -> str:
        with pytest.raises(CommandError) as error:
            call_command(*arguments, stdout=io.StringIO())
        assert "\n" not in str(error.value)
        return str(error.value)

    apply_args = ("lakehouse_apply", capture, "--warehouse", warehouse)
    assert "the bucket does not exist" in fails(
        "lakehouse_apply", capture, "--warehouse", "s3://no-such-bucket/lake"
    )
    assert "is not a capture" in fails(
        "lakehouse_apply", f"{s3_url}/nothing", "--warehouse", warehouse
    )
    assert "holds no lakehouse tables" in fails("lakehouse_verify", "--warehouse", warehouse)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    assert "S3 refused the credentials" in fails(*apply_args)
    assert "S3 refused the credentials" in fails("verify_cdc", capture)
    monkeypatch.undo()
    assert location(warehouse).files() == []
