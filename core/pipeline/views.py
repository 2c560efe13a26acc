"""The pipeline page, /admin/pipeline/ (staff only, read-only): the source, its slots, the
captures and the warehouses at a glance (status.py gathers them). The page draws the source
and its slots at once; the captures and warehouses, which are read from files and
tables, come in a moment later, and every part is fetched again every REFRESH_SECONDS without
reloading the page."""

from django.contrib import admin
from django.db import connection
from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_GET

from core.pipeline import status
from core.storage import registry

REFRESH_SECONDS = 15
PARTS = ("source", "replication", "captures", "lakehouse")


def source_and_slots() -> dict:
    with connection.cursor() as cursor:
        source = status.source(cursor)
        slots = status.slots(cursor, source.wal_per_minute)
    return {"source": source, "slots": slots}


def part_context(part: str) -> dict:
    if part in ("source", "replication"):
        return source_and_slots()
    known = registry.known()
    if part == "captures":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_current_wal_lsn()::text")
            current = status.lsn_number(cursor.fetchone()[0])
        return {
            "captures": [status.capture_status(name, current) for name in sorted(known["captures"])]
        }
    warehouses = [
        status.warehouse_status(name, recorded)
        for name, recorded in sorted(known["warehouses"].items())
    ]
    return {"warehouses": warehouses}


@require_GET
def pipeline_page(request):
    context = {
        **admin.site.each_context(request),
        "title": "The pipeline",
        "parts": PARTS,
        "refresh_seconds": REFRESH_SECONDS,
        "rate_seconds": status.RATE_OVER_SECONDS,
        "checked_at": status.now_text(),
        **source_and_slots(),
    }
    return render(request, "admin/pipeline/page.html", context)


@require_GET
def pipeline_part(request, part: str):
    if part not in PARTS:
        raise Http404(f"no part {part}")
    context = {**part_context(part), "checked_at": status.now_text()}
    return render(request, f"admin/pipeline/{part}.html", context)
