"""Admin page times, on a throwaway server (`make bench-admin`, `make bench-admin SCALE=10`).

Seeds `--scale SCALE` (default large), then requests each page through Django's test client, so
the figures are the server's time (queries and rendering), not a browser's: every list, lists
filtered, searched, sorted and paged deep, and the change pages of the big parents; then the
pipeline page and each of its parts, with a capture of the seeded shop (its full load, and a
batch of changes) and a Delta warehouse built from it. "first" is the first request right
after the seed; "warm" the median of five more. The goal is under 300 ms.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from machine import machine_line, throwaway_database_url

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# The benchmark only talks to a throwaway database; it signs nothing anyone keeps.
os.environ.setdefault("SECRET_KEY", "benchmark-only-" + "x" * 40)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lakehouse.settings")
os.environ["DJANGO_ENV_FILE"] = "/nonexistent"
os.environ["ALLOWED_HOSTS"] = "testserver"
NOW = "2026-11-01T00:00:00Z"
WARM_RUNS = 5


def pages() -> list[str]:
    """Every list, then lists as people narrow them, then change pages."""
    from core.models import Customer, Invoice, Order, Subscription, Tenant

    tenant = Tenant.objects.order_by("-created_at").first()  # the newest, a small one
    order = Order.objects.order_by("-created_at").first()
    subscription = Subscription.objects.order_by("-created_at").first()
    customer = Customer.objects.order_by("-created_at").first()
    invoice = Invoice.objects.order_by("-created_at").first()
    lists = [
        f"/admin/core/{model}/"
        for model in (
            "tenant",
            "customer",
            "product",
            "order",
            "orderitem",
            "event",
            "subscription",
            "invoice",
        )
    ]
    return [
        *lists,
        f"/admin/core/order/?tenant__id__exact={tenant.id}",
        "/admin/core/order/?status__exact=pending",
        "/admin/core/order/?o=4",  # by total, descending
        f"/admin/core/order/?q={order.order_number[:8]}",
        f"/admin/core/event/?q={order.id}",
        "/admin/core/event/?event_type__exact=purchase",
        f"/admin/core/event/?tenant__id__exact={tenant.id}",
        "/admin/core/event/?p=200",
        f"/admin/core/orderitem/?q={order.id}",
        f"/admin/core/invoice/?q={invoice.invoice_number[:8]}",
        "/admin/core/customer/?q=smith",
        f"/admin/core/order/{order.id}/change/",
        f"/admin/core/subscription/{subscription.id}/change/",
        f"/admin/core/customer/{customer.id}/change/",
    ]


PIPELINE = [
    "/admin/pipeline/",
    "/admin/pipeline/source/",
    "/admin/pipeline/replication/",
    "/admin/pipeline/captures/",
    "/admin/pipeline/lakehouse/",
]


def build_pipeline(scratch: Path) -> None:
    """A capture of the shop and a Delta warehouse from it, recorded for the page."""
    from django.core.management import call_command

    from core.simulation.runner import simulate

    quiet = {"stdout": open(os.devnull, "w"), "stderr": open(os.devnull, "w")}  # noqa: SIM115
    call_command("setup_replication", verbosity=0)
    started = time.monotonic()
    call_command("cdc_tail", "--slot", "bench_page", "--output", str(scratch / "cdc"), **quiet)
    simulate(seed=1, rate=0, count=2000)
    call_command("cdc_tail", "--slot", "bench_page", "--output", str(scratch / "cdc"), **quiet)
    captured = time.monotonic() - started
    call_command("lakehouse_apply", str(scratch / "cdc"), "--warehouse", str(scratch / "lake"),
                 **quiet)  # fmt: skip
    print(f"pipeline: captured in {captured:.0f} s, applied in "
          f"{time.monotonic() - started - captured:.0f} s")  # fmt: skip


def timed(client, path: str) -> float:
    started = time.perf_counter()
    response = client.get(path, secure=True)
    seconds = time.perf_counter() - started
    if response.status_code != 200:
        sys.exit(f"{path}: HTTP {response.status_code}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="large")
    args = parser.parse_args()
    throwaway_database_url("bench-admin")
    scratch = Path(tempfile.mkdtemp(prefix="admin-bench-"))
    os.environ["LAKEHOUSE_STATE_DIR"] = str(scratch / "state")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    call_command("migrate", verbosity=0)
    call_command("seed_all", "--scale", args.scale, "--seed", "2026", "--now", NOW, "--clean")
    user = get_user_model().objects.create_superuser("bench", "bench@example.com", None)
    client = Client()
    client.force_login(user)
    print(f"{machine_line()}; --scale {args.scale}")
    build_pipeline(scratch)
    print(f"  {'page':<80} {'first ms':>9} {'warm ms':>8}")
    slowest = 0.0
    for path in [*pages(), *PIPELINE]:
        first = timed(client, path)
        warm = statistics.median(timed(client, path) for _ in range(WARM_RUNS))
        slowest = max(slowest, first, warm)
        print(f"  {path:<80} {first * 1000:>9.0f} {warm * 1000:>8.0f}")
    print(f"slowest: {slowest * 1000:.0f} ms")


if __name__ == "__main__":
    main()
