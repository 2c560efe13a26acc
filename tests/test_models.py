"""The database refuses what must never hold; `updated_at` moves on every change."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from core.models import Customer, Order, OrderItem
from tests.factories import (
    CustomerFactory,
    EventFactory,
    InvoiceFactory,
    OrderFactory,
    OrderItemFactory,
    ProductFactory,
    SubscriptionFactory,
    TenantFactory,
)

pytestmark = pytest.mark.django_db


def refused(build, constraint: str) -> None:
    """Assert that `build()` is refused by the named database constraint."""
    with pytest.raises(IntegrityError) as error, transaction.atomic():
        build()
        connection.check_constraints()
    assert constraint in str(error.value)


def test_every_table_has_a_uuid_primary_key_and_core_name(shop):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.columns "
            "WHERE column_name = 'id' AND data_type = 'uuid' AND table_name LIKE 'core_%%'"
        )
        tables = {row[0] for row in cursor.fetchall()}
    assert tables == {
        "core_tenant",
        "core_customer",
        "core_product",
        "core_order",
        "core_orderitem",
        "core_event",
        "core_subscription",
        "core_invoice",
    }


def test_money_is_numeric_12_2(shop):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name, column_name, numeric_precision, numeric_scale "
            "FROM information_schema.columns WHERE table_name LIKE 'core_%%' "
            "AND data_type = 'numeric'"
        )
        money = cursor.fetchall()
    assert {(t, c) for t, c, _, _ in money} >= {
        ("core_order", "total"),
        ("core_subscription", "monthly_amount"),
        ("core_orderitem", "unit_price"),
        ("core_invoice", "amount"),
    }
    assert {(p, s) for _, _, p, s in money} == {(12, 2)}


def test_every_tenant_owned_table_has_an_index_leading_with_tenant_id(shop):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT t.relname FROM pg_index i "
            "JOIN pg_class t ON t.oid = i.indrelid "
            "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = i.indkey[0] "
            "WHERE t.relname LIKE 'core_%%' AND a.attname = 'tenant_id'"
        )
        indexed = {row[0] for row in cursor.fetchall()}
    owned = {"customer", "product", "order", "orderitem", "event", "subscription", "invoice"}
    assert indexed == {f"core_{name}" for name in owned}


def test_negative_price_is_refused(db):
    refused(lambda: ProductFactory(price=Decimal("-1.00")), "product_price_non_negative")


def test_quantity_below_one_is_refused(db):
    refused(lambda: OrderItemFactory(quantity=0, line_total=0), "orderitem_quantity_min_1")


def test_line_total_must_be_quantity_times_unit_price(db):
    refused(
        lambda: OrderItemFactory(quantity=2, unit_price=Decimal("10.00"), line_total=Decimal("15")),
        "orderitem_line_total_adds_up",
    )


def test_order_total_must_add_up(db):
    refused(lambda: OrderFactory(total=Decimal("1.00")), "order_total_adds_up")


def test_discount_cannot_exceed_subtotal(db):
    refused(
        lambda: OrderFactory(
            subtotal=Decimal("10.00"),
            discount=Decimal("20.00"),
            tax=Decimal("0"),
            shipping=Decimal("10.00"),
            total=Decimal("0.00"),
        ),
        "order_discount_within_subtotal",
    )


def test_completed_order_needs_completed_at(db):
    refused(lambda: OrderFactory(status=Order.Status.COMPLETED), "order_completed_at_iff_completed")


def test_order_number_is_unique_per_tenant_only(db):
    first = OrderFactory(order_number="SO-00000001")
    OrderFactory(order_number="SO-00000001")  # another tenant: allowed
    refused(
        lambda: OrderFactory(customer__tenant=first.tenant, order_number="SO-00000001"),
        "order_number_per_tenant",
    )


def test_email_is_unique_per_tenant(db):
    first = CustomerFactory(email="a@example.com")
    refused(
        lambda: CustomerFactory(tenant=first.tenant, email="a@example.com"),
        "customer_email_per_tenant",
    )


@pytest.mark.parametrize(
    ("build", "constraint"),
    [
        (lambda other: OrderFactory(tenant=other), "order_customer_same_tenant_fk"),
        (lambda other: EventFactory(tenant=other), "event_customer_same_tenant_fk"),
        (lambda other: SubscriptionFactory(tenant=other), "subscription_customer_same_tenant_fk"),
        # The invoice's customer is of the other tenant too: only its subscription is not (an
        # invoice of another tenant altogether breaks two keys, and either may be told first).
        (
            lambda other: InvoiceFactory(tenant=other, customer=CustomerFactory(tenant=other)),
            "invoice_subscription_same_tenant_fk",
        ),
        (
            lambda other: OrderItemFactory(product=ProductFactory(tenant=other)),
            "orderitem_product_same_tenant_fk",
        ),
    ],
)
def test_no_row_can_reference_another_tenant(db, build, constraint):
    other = TenantFactory()
    refused(lambda: build(other), constraint)


def test_purchase_event_needs_an_order_and_only_purchases_have_one(shop):
    refused(lambda: EventFactory(event_type="purchase"), "event_order_iff_purchase")
    refused(
        lambda: EventFactory(customer=shop["customer"], order=shop["order"]),
        "event_order_iff_purchase",
    )


def test_trial_needs_a_trial_end(db):
    refused(lambda: SubscriptionFactory(status="trial"), "subscription_trial_has_trial_end")


def test_paid_invoice_needs_paid_at(db):
    refused(lambda: InvoiceFactory(status="paid"), "invoice_paid_at_iff_paid")


def test_created_at_can_be_back_dated(db):
    long_ago = timezone.now() - timedelta(days=170)
    customer = CustomerFactory(created_at=long_ago, updated_at=long_ago)
    customer.refresh_from_db()
    assert customer.created_at == long_ago


def test_updated_at_before_created_at_is_refused(db):
    now = timezone.now()
    refused(
        lambda: CustomerFactory(created_at=now, updated_at=now - timedelta(seconds=1)),
        "customer_updated_after_created",
    )


def test_updated_at_moves_on_save_and_on_queryset_update(db):
    long_ago = timezone.now() - timedelta(days=30)
    customer = CustomerFactory(created_at=long_ago, updated_at=long_ago)

    customer.city = "Paris"
    customer.save()
    customer.refresh_from_db()
    after_save = customer.updated_at
    assert after_save > long_ago

    Customer.objects.filter(pk=customer.pk).update(updated_at=long_ago)  # explicit: kept
    customer.refresh_from_db()
    assert customer.updated_at == long_ago
    Customer.objects.filter(pk=customer.pk).update(city="Rome")  # not set: the trigger moves it
    customer.refresh_from_db()
    assert customer.updated_at > long_ago


def test_deleting_a_customer_removes_their_rows(shop):
    shop["customer"].delete()
    assert not OrderItem.objects.filter(pk=shop["orderitem"].pk).exists()
    assert not Order.objects.filter(pk=shop["order"].pk).exists()
