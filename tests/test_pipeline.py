"""The pipeline page (/admin/pipeline/): staff only, read-only, and its numbers are the real
ones: rows per table and tenant, each slot and the WAL it holds, each capture's files and rows
(on disk and on S3), each warehouse's versions, rows and last file, and the last verdict."""

import io
import re
import shutil
import time
from html import unescape
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.test import Client

from core.capture.target import change_range
from core.pipeline import status as pipeline
from core.simulation.runner import simulate
from tests.conftest import replicated_shop
from tests.seeded import rows, value

pytestmark = pytest.mark.django_db(transaction=True)
TENANT_TABLES = [
    "core_customer", "core_event", "core_invoice", "core_order", "core_orderitem",
    "core_product", "core_subscription",
]  # fmt: skip


@pytest.fixture
def staff() -> Client:
    client = Client(HTTP_HOST="127.0.0.1")
    user = get_user_model().objects.create_user("staff", password="x", is_staff=True)
    client.force_login(user)
    return client


def get(client: Client, path: str) -> str:
    answer = client.get(path, secure=True)
    assert answer.status_code == 200, answer.status_code
    return answer.content.decode()


def cells(html: str, marker: str) -> list[str]:
    """The cells' texts of the table row carrying `marker` (a data-* attribute)."""
    row = re.search(rf"<tr[^>]*{re.escape(marker)}[^>]*>(.*?)</tr>", html, re.S).group(1)
    return [re.sub(r"<[^>]+>", "", unescape(cell)).strip() for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]  # fmt: skip


def cell(html: str, marker: str) -> str:
    """The text of the table cell carrying `marker`."""
    found = re.search(rf"<td[^>]*{re.escape(marker)}[^>]*>(.*?)</td>", html, re.S).group(1)
    return re.sub(r"<[^>]+>", "", unescape(found)).strip()


def number(text: str) -> int:
    return int(text.replace(",", "").replace("≈", "").strip())


def quiet(*args: str) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_only_staff_see_it_and_nothing_on_it_changes_anything(client):
    for path in ("/admin/pipeline/", "/admin/pipeline/captures/"):
        answer = client.get(path, secure=True)
        assert answer.status_code == 302 and "/admin/login/" in answer["Location"]
    user = get_user_model().objects.create_user("someone", password="x")
    client.force_login(user)
    assert "/admin/login/" in client.get("/admin/pipeline/", secure=True)["Location"]
    staff = get_user_model().objects.create_user("staff", password="x", is_staff=True)
    client.force_login(staff)
    for path in ("/admin/pipeline/", "/admin/pipeline/lakehouse/"):
        assert client.post(path, secure=True).status_code == 405  # read-only: no POST at all
    page = get(client, "/admin/pipeline/")
    forms = re.findall(r"<form[^>]*>", page)
    assert all("logout" in form for form in forms), forms  # the admin's own log-out only
    assert client.get("/admin/pipeline/nothing/", secure=True).status_code == 404


def test_the_numbers_are_the_databases_the_slots_the_captures_and_the_lakes(
    staff, tmp_path, s3_url
):
    capture, lake = tmp_path / "cdc", tmp_path / "lake"
    with replicated_shop(seed=61):
        quiet("cdc_tail", "--slot", "page", "--output", str(capture))
        simulate(seed=2, rate=0, count=300)
        quiet("cdc_tail", "--slot", "page", "--output", str(capture))
        quiet("cdc_tail", "--slot", "page_s3", "--output", f"{s3_url}/cdc")
        quiet("lakehouse_apply", str(capture), "--warehouse", str(lake))
        quiet("lakehouse_verify", "--warehouse", str(lake))
        simulate(seed=3, rate=0, count=100)  # the source moves on: the capture falls behind

        source = get(staff, "/admin/pipeline/source/")
        for table in TENANT_TABLES:
            exact = value(f"SELECT count(*) FROM {table}")
            assert number(cell(source, f'data-table="{table}"')) == exact, table
        tenant, name = rows("SELECT id::text, name FROM core_tenant ORDER BY name LIMIT 1")[0]
        shown = cells(source, f'data-tenant="{tenant}"')
        assert shown[0] == name
        assert number(shown[2]) == value(
            "SELECT count(*) FROM core_event WHERE tenant_id = %s", [tenant]
        )
        assert "Publication <strong>dms_publication</strong>: 8 of 8 core tables" in source

        slots = get(staff, "/admin/pipeline/replication/")
        held = value(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint "
            "FROM pg_replication_slots WHERE slot_name = 'page'"
        )
        row = re.search(r'<tr class="(\w+)" data-slot="page">(.*?)</tr>', slots, re.S)
        assert row.group(1) == "WARN"  # nothing reads it: the readiness check's rule
        held_shown = int(re.search(r'data-bytes="(\d+)"', row.group(2)).group(1))
        assert abs(held_shown - held) < 64 * 1024  # WAL written between the two readings
        assert cells(slots, 'data-slot="page"')[:3] == ["page", "test_decoding", "no"]

        captures = get(staff, "/admin/pipeline/captures/")
        files = list(capture.rglob("*.parquet"))
        block = captures.split(f'data-capture="{capture}"')[1].split('class="item"')[0]
        assert f'<strong class="files">{len(files)}</strong>' in block
        for table in TENANT_TABLES:
            written = [p for p in files if p.parent.parent.parent.parent.name == table]
            in_files = sum(pq.ParquetFile(p).metadata.num_rows for p in written)
            counted = cells(block, f'data-table="{table}"')
            assert (number(counted[1]), number(counted[2])) == (len(written), in_files), table
        newest = max((p for p in files if change_range(p.name)), key=lambda p: p.name)
        assert newest.name in block
        assert "<svg" in block and '<rect class="bar"' in block  # a chart, drawn here
        assert f'data-capture="{s3_url}/cdc"' in captures  # and the one on S3

        lakehouse = get(staff, "/admin/pipeline/lakehouse/")
        block = lakehouse.split(f'data-warehouse="{lake}"')[1]
        assert '<span class="status PASS">same</span>' in block
        table = DeltaTable(str(lake / "core_order"))
        version, rows_shown, last_file = cells(block, 'data-table="core_order"')[1:]
        assert number(version) == table.version()
        assert number(rows_shown) == table.to_pyarrow_dataset().count_rows()
        assert (
            last_file
            == max(
                (
                    p
                    for p in capture.rglob("*.parquet")
                    if "core_order" in str(p) and change_range(p.name)
                ),
                key=lambda p: p.name,
            ).name
        )


def test_the_page_draws_at_once_and_loads_the_rest(staff):
    page = get(staff, "/admin/pipeline/")
    assert "Source: PostgreSQL" in page and "Replication slots" in page
    for part in ("captures", "lakehouse", "source", "replication"):
        assert f'data-part="/admin/pipeline/{part}/"' in page
    assert "setInterval(load, 15 * 1000)" in page


def test_rates_come_from_two_readings_some_seconds_apart(monkeypatch):
    monkeypatch.setattr(pipeline, "_readings", pipeline.deque(maxlen=pipeline.READINGS))
    assert pipeline.rates(pipeline.Reading(100.0, 1_000, 5_000)) == (None, None)
    assert pipeline.rates(pipeline.Reading(102.0, 1_300, 5_100)) == (None, None)  # too soon
    writes, wal = pipeline.rates(pipeline.Reading(110.0, 2_000, 65_000))
    assert (writes, wal) == (6_000.0, 360_000.0)  # 1,000 rows and 60,000 bytes in 10 s


def test_the_chart_shows_each_minute_of_the_window_to_scale():
    now = 1_800_000_000.0
    minute = int(now) // 60 * 60
    history = [[minute - 7200 - 60, 999, 9], [minute - 600, 40, 2], [minute - 60, 80, 4]]
    svg = pipeline.history_chart(history, hours=2, now=now)
    bars = re.findall(
        r'<rect class="bar" x="[\d.]+" y="[\d.]+" width="[\d.]+" height="([\d.]+)"', svg
    )
    assert [float(height) for height in bars] == [51.0, 102.0]  # the older minute is left out
    assert "up to 80" in svg and "up to 4 s" in svg
    empty = pipeline.history_chart([], hours=1, now=now)
    assert "no changes in this window" in empty
    assert "up to" not in empty  # no scale where nothing was measured


def test_slots_are_judged_by_the_readiness_checks_rule():
    from core.replication.checks import FAIL, PASS, SLOT_WAL_WARNING, WARN, slot_status

    assert slot_status(True, 1024, "reserved") == PASS
    assert slot_status(True, SLOT_WAL_WARNING + 1, "extended") == WARN  # a reader behind
    assert slot_status(False, 0, "reserved") == WARN  # nobody reads it
    assert slot_status(False, 0, "lost") == FAIL


def test_a_capture_or_warehouse_that_is_gone_is_said_so(staff, tmp_path, settings):
    settings.PIPELINE_LOCATIONS = [str(tmp_path / "gone"), f"warehouse:{tmp_path / 'nolake'}"]
    captures = get(staff, "/admin/pipeline/captures/")
    assert "no capture here (no capture.json)" in captures
    lakehouse = get(staff, "/admin/pipeline/lakehouse/")
    assert "holds no lakehouse tables" in lakehouse
    Path(tmp_path / "gone").mkdir()
    started = time.monotonic()
    get(staff, "/admin/pipeline/")
    assert time.monotonic() - started < 5


def test_a_place_that_went_shows_no_old_verdict_and_can_be_forgotten(staff, tmp_path, settings):
    """A warehouse checked, then deleted: the page says it is gone, with no green badge left
    above that, and `pipeline_forget` takes it off the page (`--gone`: every such place)."""
    settings.LAKEHOUSE_STATE_DIR = tmp_path / "state"  # this test's places only
    lake, cdc = tmp_path / "lake", tmp_path / "cdc"
    with replicated_shop(seed=5):
        quiet("cdc_tail", "--slot", "forgotten", "--output", str(cdc))
        quiet("lakehouse_apply", str(cdc), "--warehouse", str(lake))
        quiet("lakehouse_verify", "--warehouse", str(lake))
        page = get(staff, "/admin/pipeline/lakehouse/")
        shown = page[page.index(f'data-warehouse="{lake}"') :]
        assert ">same<" in shown.split("</div>")[0]
        shutil.rmtree(lake)
        page = get(staff, "/admin/pipeline/lakehouse/")
        shown = page[page.index(f'data-warehouse="{lake}"') :].split("</div>")[0]
        assert "holds no lakehouse tables" in shown
        assert ">same<" not in shown
        assert f"bin/manage pipeline_forget {lake}" in unescape(shown)
        assert quiet("pipeline_forget", "--gone") == f"forgot warehouse {lake}\n"
        assert f'data-warehouse="{lake}"' not in get(staff, "/admin/pipeline/lakehouse/")
        assert f'data-capture="{cdc}"' in get(staff, "/admin/pipeline/captures/")
        assert quiet("pipeline_forget", str(cdc)) == f"forgot capture {cdc}\n"
        assert f'data-capture="{cdc}"' not in get(staff, "/admin/pipeline/captures/")
        assert quiet("pipeline_forget", str(cdc)) == f"{cdc} was not on the page\n"
