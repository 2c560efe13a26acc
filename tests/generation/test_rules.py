"""Order amounts, prices and dates without a database."""

import random
from datetime import UTC, datetime
from uuid import UUID

import pytest

from core.generation.rules import add_months, invoice_due_date, invoice_number, order_amounts
from core.generation.tenants import (
    MAX_PRICE_CENTS,
    MIN_PRICE_CENTS,
    Catalog,
    Product,
    product_sku,
    repriced_cents,
    shop_price_cents,
    sku_number,
)


def test_add_months_clamps_to_the_last_day_and_crosses_years():
    assert add_months(datetime(2027, 1, 31, tzinfo=UTC), 1).day == 28
    assert add_months(datetime(2028, 1, 31, tzinfo=UTC), 1).day == 29
    december = add_months(datetime(2026, 12, 15, 9, 45, tzinfo=UTC), 1)
    assert (december.year, december.month, december.day, december.hour) == (2027, 1, 15, 9)
    assert add_months(datetime(2027, 3, 31, tzinfo=UTC), -1).day == 28


def test_order_amounts_add_up_with_tax_after_discount_and_free_shipping_from_50():
    small = order_amounts([1999, 1000], 10)
    assert small["subtotal"] == 2999 and small["discount"] == 299
    assert small["tax"] == round((2999 - 299) * 0.08)
    assert small["shipping"] == 599
    assert small["total"] == 2999 - 299 + small["tax"] + 599
    assert order_amounts([5000], 0)["shipping"] == 0
    assert order_amounts([5550], 10)["shipping"] == 599  # 49.95 after the discount
    rng = random.Random(3)
    for _ in range(500):
        lines = [rng.randint(499, 200_000) for _ in range(rng.randint(1, 5))]
        amounts = order_amounts(lines, rng.choice((0, 5, 10, 15, 20)))
        assert amounts["total"] == (
            amounts["subtotal"] - amounts["discount"] + amounts["tax"] + amounts["shipping"]
        )
        assert 0 <= amounts["discount"] <= amounts["subtotal"]


def test_shop_prices_end_in_99_and_stay_in_range():
    for dollars in (0.01, 4.2, 17.5, 18.49, 160.0, 1999.5, 99_999.0):
        cents = shop_price_cents(dollars)
        assert MIN_PRICE_CENTS <= cents < MAX_PRICE_CENTS
        assert cents % 100 == 99 or cents == MIN_PRICE_CENTS
    assert shop_price_cents(18.49) == 1799


def test_a_price_change_moves_at_most_a_tenth_and_stays_a_shop_price():
    rng = random.Random(8)
    for _ in range(1000):
        before = shop_price_cents(rng.uniform(5, 2000))
        after = repriced_cents(rng, before)
        assert abs(after - before) <= before * 0.1 + 100
        assert after % 100 == 99 or after == MIN_PRICE_CENTS


def test_due_date_and_numbers():
    issued = datetime(2026, 12, 25, 23, 30, tzinfo=UTC)
    assert invoice_due_date(issued).isoformat() == "2027-01-08"
    assert invoice_number(issued.date(), 42, 1) == "INV-2612-000042-1"
    assert sku_number(product_sku("Electronics", 42)) == 42


def test_popularity_follows_the_catalogue_number_whatever_order_products_come_in():
    products = [
        Product(UUID(int=n), product_sku(category, n), category, 999)
        for n, category in enumerate(["Sports", "Books", "Home", "Electronics"] * 10, start=1)
    ]
    by_category = sorted(products, key=lambda product: product.sku)  # Books first
    draws = [Catalog(order).draw_distinct(random.Random(4), 3) for order in (products, by_category)]
    assert draws[0] == draws[1]
    counts = {product.id: 0 for product in products}
    catalog, rng = Catalog(by_category), random.Random(2)
    for _ in range(20_000):
        counts[catalog.popular(rng).id] += 1
    ranked = [counts[UUID(int=n)] for n in range(1, 41)]
    assert ranked[0] > ranked[9] > ranked[39]
    assert ranked[0] == pytest.approx(max(ranked))
