"""The rules the seeded data must follow, checked with SQL on a `seed_all --scale small` world."""

from datetime import timedelta

import pytest

from tests.conftest import NOW
from tests.seeded import ORDERS_NOT_ADDING_UP, rows, value

pytestmark = pytest.mark.django_db

TABLES = ["tenant", "customer", "product", "order", "orderitem", "event", "subscription", "invoice"]


def per_tier(sql: str) -> dict[str, float]:
    return {tier: float(number) for tier, number in rows(sql)}


def test_tenants_are_eight_to_ten_with_the_tier_mix(seeded_world):
    tiers = dict(rows("SELECT tier, count(*) FROM core_tenant GROUP BY tier"))
    assert tiers["enterprise"] == 2
    assert tiers["mid_market"] == 3
    assert 3 <= tiers["small_business"] <= 5


def test_tenant_sizes_follow_the_tier(seeded_world):
    customers = per_tier(
        "SELECT t.tier, avg(n) FROM core_tenant t JOIN (SELECT tenant_id, count(*) n "
        "FROM core_customer GROUP BY 1) c ON c.tenant_id = t.id GROUP BY 1"
    )
    assert customers["enterprise"] > customers["mid_market"] > customers["small_business"]
    products = dict(
        rows(
            "SELECT t.tier, min(n) || '-' || max(n) FROM core_tenant t JOIN (SELECT tenant_id, "
            "count(*) n FROM core_product GROUP BY 1) p ON p.tenant_id = t.id GROUP BY 1"
        )
    )
    low, _ = map(int, products["enterprise"].split("-"))
    assert low >= 150
    assert all(50 <= int(n) <= 80 for n in products["small_business"].split("-"))


def test_products_prices_and_categories(seeded_world):
    assert value("SELECT min(price) >= 5 AND max(price) <= 2000 FROM core_product")
    medians = dict(
        rows(
            "SELECT category, percentile_cont(0.5) WITHIN GROUP (ORDER BY price) "
            "FROM core_product GROUP BY category"
        )
    )
    assert set(medians) == {"Electronics", "Clothing", "Home", "Books", "Sports"}
    assert medians["Books"] < medians["Clothing"] < medians["Electronics"]


def test_orders_per_customer_and_items_per_order(seeded_world):
    per_customer = per_tier(
        "SELECT t.tier, count(o.id)::float / count(DISTINCT c.id) FROM core_tenant t "
        "JOIN core_customer c ON c.tenant_id = t.id LEFT JOIN core_order o ON o.customer_id = c.id "
        "GROUP BY 1"
    )
    assert all(3 <= mean <= 12 for mean in per_customer.values()), per_customer
    assert per_customer["enterprise"] > per_customer["small_business"]
    low, high = rows(
        "SELECT min(n), max(n) FROM (SELECT count(*) n FROM core_orderitem GROUP BY order_id) x"
    )[0]
    assert (low, high) == (1, 5)
    assert (
        value(
            "SELECT count(*) FROM core_order o WHERE NOT EXISTS "
            "(SELECT 1 FROM core_orderitem i WHERE i.order_id = o.id)"
        )
        == 0
    )


def test_order_status_mix(seeded_world):
    share = dict(
        rows("SELECT status, count(*)::float / sum(count(*)) OVER () FROM core_order GROUP BY 1")
    )
    assert share["completed"] == pytest.approx(0.80, abs=0.04)
    assert share["processing"] == pytest.approx(0.10, abs=0.03)
    assert share["pending"] == pytest.approx(0.05, abs=0.02)
    assert share["cancelled"] == pytest.approx(0.05, abs=0.02)
    recent, old = rows(
        "SELECT avg((status IN ('pending', 'processing'))::int) FILTER (WHERE created_at > %s), "
        "       avg((status IN ('pending', 'processing'))::int) FILTER (WHERE created_at < %s) "
        "FROM core_order",
        [NOW - timedelta(days=3), NOW - timedelta(days=30)],
    )[0]
    assert recent > 3 * old


def test_order_totals_add_up_exactly_and_prices_come_from_products(seeded_world):
    assert value(ORDERS_NOT_ADDING_UP) == 0
    assert (
        value("SELECT count(*) FROM core_order WHERE total <> subtotal - discount + tax + shipping")
        == 0
    )
    assert (
        value(
            "SELECT count(*) FROM core_orderitem i JOIN core_product p ON p.id = i.product_id "
            "WHERE i.unit_price <> p.price OR i.sku <> p.sku OR i.line_total <> i.unit_price * i.quantity"
        )
        == 0
    )


def test_events_per_customer_by_tier(seeded_world):
    per_customer = per_tier(
        "SELECT t.tier, count(e.id)::float / count(DISTINCT c.id) FROM core_tenant t "
        "JOIN core_customer c ON c.tenant_id = t.id LEFT JOIN core_event e ON e.customer_id = c.id "
        "GROUP BY 1"
    )
    assert all(20 <= mean <= 100 for mean in per_customer.values()), per_customer
    assert per_customer["enterprise"] > per_customer["small_business"]


@pytest.mark.parametrize("scope", ["overall", "per tenant"])
def test_funnel_narrows_at_every_step(seeded_world, scope):
    group = "tenant_id" if scope == "per tenant" else "()"
    for counts in rows(
        f"SELECT count(*) FILTER (WHERE event_type = 'page_view'), "
        "count(*) FILTER (WHERE event_type IN ('product_view', 'search')), "
        "count(*) FILTER (WHERE event_type = 'product_view'), "
        "count(*) FILTER (WHERE event_type = 'add_to_cart'), "
        "count(*) FILTER (WHERE event_type = 'checkout'), "
        f"count(*) FILTER (WHERE event_type = 'purchase') FROM core_event GROUP BY {group}"
    ):
        page, browse, product, cart, checkout, purchase = counts
        assert page > product > cart > checkout > purchase > 0, counts
        assert browse > cart


def test_every_purchase_event_is_a_real_order_of_the_same_customer_at_its_time(seeded_world):
    assert value("SELECT count(*) FROM core_event WHERE event_type = 'purchase'") == value(
        "SELECT count(*) FROM core_order"
    )
    assert (
        value(
            "SELECT count(*) FROM core_event e JOIN core_order o ON o.id = e.order_id "
            "WHERE e.customer_id <> o.customer_id OR e.tenant_id <> o.tenant_id "
            "   OR e.created_at <> o.created_at"
        )
        == 0
    )
    assert value("SELECT count(DISTINCT order_id) FROM core_event") == value(
        "SELECT count(*) FROM core_order"
    )


def test_sessions_belong_to_one_customer_and_are_minutes_apart(seeded_world):
    assert (
        value(
            "SELECT count(*) FROM (SELECT session_id FROM core_event GROUP BY 1 "
            "HAVING count(DISTINCT customer_id) > 1) x"
        )
        == 0
    )
    assert value(
        "SELECT max(gap) FROM (SELECT created_at - lag(created_at) OVER "
        "(PARTITION BY session_id ORDER BY created_at) gap FROM core_event) x"
    ) <= timedelta(minutes=10)
    bounced = value(
        "SELECT avg((n = 1)::int) FROM (SELECT count(*) n FROM core_event GROUP BY session_id) x"
    )
    assert 0.15 < bounced < 0.6


def test_subscriptions_share_plans_and_statuses_agree(seeded_world):
    share = value(
        "SELECT count(DISTINCT s.customer_id)::float / (SELECT count(*) FROM core_customer) "
        "FROM core_subscription s"
    )
    assert 0.2 <= share <= 0.4
    amounts = dict(
        rows("SELECT plan, array_agg(DISTINCT monthly_amount) FROM core_subscription GROUP BY 1")
    )
    assert {plan: [str(a) for a in values] for plan, values in amounts.items()} == {
        "basic": ["9.99"],
        "pro": ["29.99"],
        "premium": ["99.99"],
        "enterprise": ["299.99"],
    }
    assert set(dict(rows("SELECT status, count(*) FROM core_subscription GROUP BY 1"))) == {
        "active",
        "trial",
        "cancelled",
        "expired",
    }
    assert (
        value(
            "SELECT count(*) FROM core_subscription WHERE status = 'trial' AND trial_ends_at <= %s",
            [NOW],
        )
        == 0
    )
    assert (
        value(
            "SELECT count(*) FROM core_subscription WHERE status IN ('cancelled', 'expired') "
            "AND (ended_at > %s OR ended_at IS NULL)",
            [NOW],
        )
        == 0
    )


def test_one_invoice_per_billing_month_at_the_plan_amount(seeded_world):
    assert (
        value(
            "SELECT count(*) FROM core_invoice i JOIN core_subscription s ON s.id = i.subscription_id "
            "WHERE i.amount <> s.monthly_amount OR i.customer_id <> s.customer_id "
            "   OR i.created_at < s.created_at"
        )
        == 0
    )
    # Active subscriptions are invoiced for every month since billing began, the current included.
    mismatched = value(
        "SELECT count(*) FROM core_subscription s WHERE s.status = 'active' AND "
        "(SELECT count(*) FROM core_invoice i WHERE i.subscription_id = s.id) <> "
        "(SELECT count(*) FROM generate_series(coalesce(s.trial_ends_at, s.started_at), %s, "
        " interval '1 month'))",
        [NOW],
    )
    assert mismatched == 0
    assert value("SELECT count(*) FROM core_invoice WHERE status = 'trial'") == 0


def test_invoice_statuses_agree_with_their_dates(seeded_world):
    today = NOW.date()
    assert (
        value(
            "SELECT count(*) FROM core_invoice WHERE status = 'overdue' AND due_date >= %s", [today]
        )
        == 0
    )
    assert (
        value("SELECT count(*) FROM core_invoice WHERE status = 'paid' AND paid_at > %s", [NOW])
        == 0
    )
    old = dict(
        rows(
            "SELECT status, count(*)::float / sum(count(*)) OVER () FROM core_invoice "
            "WHERE period_start < %s GROUP BY 1",
            [today - timedelta(days=60)],
        )
    )
    assert old["paid"] > 0.85
    current = {
        status
        for (status,) in rows(
            "SELECT DISTINCT status FROM core_invoice WHERE due_date >= %s", [today]
        )
    }
    assert current <= {"draft", "sent", "paid", "cancelled"}


@pytest.mark.parametrize("table", TABLES)
def test_no_timestamp_in_the_future_and_updated_after_created(seeded_world, table):
    assert (
        value(
            f"SELECT count(*) FROM core_{table} WHERE created_at > %s OR updated_at > %s",
            [NOW, NOW],
        )
        == 0
    )
    assert value(f"SELECT count(*) FROM core_{table} WHERE updated_at < created_at") == 0
    assert value(f"SELECT min(created_at) FROM core_{table}") >= NOW - timedelta(days=180)


@pytest.mark.parametrize(
    ("child", "parent", "key"),
    [
        ("core_customer", "core_tenant", "tenant_id"),
        ("core_product", "core_tenant", "tenant_id"),
        ("core_order", "core_customer", "customer_id"),
        ("core_orderitem", "core_product", "product_id"),
        ("core_event", "core_customer", "customer_id"),
        ("core_subscription", "core_customer", "customer_id"),
        ("core_invoice", "core_subscription", "subscription_id"),
    ],
)
def test_every_child_comes_after_its_parent(seeded_world, child, parent, key):
    assert (
        value(
            f"SELECT count(*) FROM {child} c JOIN {parent} p ON p.id = c.{key} "
            "WHERE c.created_at < p.created_at"
        )
        == 0
    )


def test_no_row_references_another_tenant(seeded_world):
    crossings = value(
        "SELECT (SELECT count(*) FROM core_order o JOIN core_customer c ON c.id = o.customer_id "
        "        WHERE c.tenant_id <> o.tenant_id) "
        "     + (SELECT count(*) FROM core_orderitem i JOIN core_product p ON p.id = i.product_id "
        "        WHERE p.tenant_id <> i.tenant_id) "
        "     + (SELECT count(*) FROM core_event e JOIN core_product p ON p.id = e.product_id "
        "        WHERE p.tenant_id <> e.tenant_id) "
        "     + (SELECT count(*) FROM core_invoice i JOIN core_customer c ON c.id = i.customer_id "
        "        WHERE c.tenant_id <> i.tenant_id)"
    )
    assert crossings == 0


def test_history_grows_with_weekly_monthly_and_daily_rhythm(seeded_world):
    first, last = rows(
        "SELECT count(*) FILTER (WHERE created_at < %s), count(*) FILTER (WHERE created_at >= %s) "
        "FROM core_event",
        [NOW - timedelta(days=150), NOW - timedelta(days=30)],
    )[0]
    assert last > 1.5 * first
    weekday, weekend = rows(
        "SELECT avg(n) FILTER (WHERE dow BETWEEN 1 AND 5), avg(n) FILTER (WHERE dow IN (0, 6)) "
        "FROM (SELECT date_trunc('day', created_at) d, extract(dow FROM created_at) dow, count(*) n "
        "      FROM core_event WHERE created_at > %s GROUP BY 1, 2) x",
        [NOW - timedelta(days=120)],
    )[0]
    assert float(weekday) > 1.15 * float(weekend)
    evening, night = rows(
        "SELECT count(*) FILTER (WHERE extract(hour FROM created_at) BETWEEN 18 AND 21), "
        "       count(*) FILTER (WHERE extract(hour FROM created_at) BETWEEN 2 AND 5) FROM core_event"
    )[0]
    assert evening > 4 * night
    payday, mid_month = rows(
        "SELECT avg(n) FILTER (WHERE dom <= 3), avg(n) FILTER (WHERE dom BETWEEN 20 AND 27) "
        "FROM (SELECT date_trunc('day', created_at) d, extract(day FROM created_at) dom, count(*) n "
        "      FROM core_event WHERE created_at > %s GROUP BY 1, 2) x",
        [NOW - timedelta(days=120)],
    )[0]
    assert float(payday) > 1.1 * float(mid_month)
