"""Admin page times, on a throwaway server (`make bench-admin`, `make bench-admin SCALE=10`).

Seeds `--scale SCALE` (default large), then requests each page through Django's test client, so
the figures are the server's time (queries and rendering), not a browser's: every list, lists
filtered, searched, sorted and paged deep, and the change pages of the big parents. "first" is
the first request right after the seed; "warm" the median of five more. The goal is under
300 ms at `large`.
"""

import argparse
import os
import statistics
import sys
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
    print(f"  {'page':<80} {'first ms':>9} {'warm ms':>8}")
    slowest = 0.0
    for path in pages():
        first = timed(client, path)
        warm = statistics.median(timed(client, path) for _ in range(WARM_RUNS))
        slowest = max(slowest, first, warm)
        print(f"  {path:<80} {first * 1000:>9.0f} {warm * 1000:>8.0f}")
    print(f"slowest: {slowest * 1000:.0f} ms")


if __name__ == "__main__":
    main()
