"""Sessions and orders without a database: funnel shapes, purchase sessions, order fates."""

import itertools
import random
from collections import Counter
from datetime import UTC, datetime
from uuid import UUID

import pytest

from core.generation.customers import CustomerRef
from core.generation.events import MAX_GAP, browsing_session, purchase_session
from core.generation.orders import (
    SETTLED_STATUS_SHARES,
    Purchase,
    order_rows,
    order_status,
    settled_status,
)
from core.generation.randomness import new_uuid
from core.generation.tenants import Catalog, Product, product_sku

NOW = datetime(2026, 11, 1, tzinfo=UTC).timestamp()
CUSTOMER = CustomerRef(UUID(int=7), UUID(int=1), 7, NOW - 90 * 86400, "Leeds", "GB")
CATALOG = Catalog(
    [
        Product(UUID(int=100 + n), product_sku(category, n), category, 1999 + 1000 * n)
        for n, category in enumerate(["Books", "Home", "Sports", "Clothing"] * 5, start=1)
    ]
)
FUNNEL = ["page_view", "product_view", "add_to_cart", "checkout", "purchase"]


def test_a_purchase_session_ends_in_its_order_at_the_orders_time():
    rng = random.Random(3)
    purchase = Purchase(
        UUID(int=9), "261101-000007-01", NOW - 3600, (UUID(int=101),), ("BOO-000001",), "21.58"
    )
    events = purchase_session(rng, CUSTOMER, "mobile", purchase, CATALOG)
    kinds = [event.event_type for event in events]
    assert kinds[-2:] == ["checkout", "purchase"]
    assert "add_to_cart" in kinds and kinds.index("add_to_cart") < kinds.index("checkout")
    last = events[-1]
    assert last.order_id == purchase.order_id and last.created_at.timestamp() == purchase.placed_at
    assert len({event.session_id for event in events}) == 1
    assert [event.order_id for event in events[:-1]] == [None] * (len(events) - 1)
    times = [event.created_at.timestamp() for event in events]
    assert all(0 < later - earlier <= MAX_GAP for earlier, later in itertools.pairwise(times))


def test_browsing_sessions_narrow_step_by_step_and_never_buy():
    rng = random.Random(11)
    counts, kinds_seen = Counter(), Counter()
    for _ in range(3000):
        events = browsing_session(rng, CUSTOMER, "desktop", CATALOG, starts_at=NOW - 86400)
        kinds = [event.event_type for event in events]
        counts.update(kinds)
        assert "purchase" not in kinds and kinds[0] == "page_view"
        if "checkout" in kinds:
            assert "add_to_cart" in kinds
            kinds_seen["checkout"] += 1
        elif "add_to_cart" in kinds:
            kinds_seen["cart"] += 1
        elif "product_view" in kinds:
            kinds_seen["browse"] += 1
        else:
            kinds_seen["bounce"] += 1
    steps = [counts[kind] for kind in FUNNEL[:4]]
    assert steps == sorted(steps, reverse=True) and steps[-1] > 0
    assert kinds_seen["bounce"] > kinds_seen["browse"] > 0
    assert kinds_seen["cart"] > 0 and kinds_seen["checkout"] > 0


def test_settled_statuses_follow_their_shares():
    rng = random.Random(5)
    seen = Counter(settled_status(new_uuid(rng)) for _ in range(50_000))
    for status, share in SETTLED_STATUS_SHARES:
        assert seen[status] / 50_000 == pytest.approx(share, abs=0.006)


def test_an_order_that_stays_pending_or_processing_is_so_at_any_age():
    rng = random.Random(2)
    for age in (0.1, 2, 10, 100):
        assert order_status(rng, age, "pending") == "pending"
        assert order_status(rng, age, "processing") == "processing"
    old = Counter(order_status(rng, 30, "completed") for _ in range(1000))
    assert old == {"completed": 1000}
    young = Counter(order_status(rng, 0.2, "completed") for _ in range(4000))
    assert young["pending"] > young["completed"] and young["processing"] > 0


def test_an_orders_amounts_add_up():
    rng = random.Random(9)
    for index in range(300):
        order, items = order_rows(
            rng=rng,
            customer=CUSTOMER,
            catalog=CATALOG,
            placed_at=NOW - index * 3600,
            now=NOW,
            number=f"261101-000007-{index:02d}",
        )
        assert 1 <= len(items) <= 5
        assert order.subtotal == sum(item.line_total for item in items)
        assert order.total == order.subtotal - order.discount + order.tax + order.shipping
        assert all(item.line_total == item.unit_price * item.quantity for item in items)
        assert (order.completed_at is not None) == (order.status == "completed")
        assert (order.cancelled_at is not None) == (order.status == "cancelled")
        assert order.status == settled_status(order.id) or order.status in ("pending", "processing")
