from datetime import UTC, datetime

import pytest
from django.db import connection

from tests.factories import (
    EventFactory,
    InvoiceFactory,
    OrderFactory,
    OrderItemFactory,
)


@pytest.fixture
def order_item(db):
    return OrderItemFactory()


@pytest.fixture
def shop(db, order_item):
    """One row in every table, all of one tenant, linked the way real data is."""
    order = order_item.order
    purchase = EventFactory(
        customer=order.customer, event_type="purchase", order=order, product=order_item.product
    )
    invoice = InvoiceFactory(subscription__customer=order.customer)
    return {
        "tenant": order.tenant,
        "customer": order.customer,
        "product": order_item.product,
        "order": order,
        "orderitem": order_item,
        "event": purchase,
        "subscription": invoice.subscription,
        "invoice": invoice,
    }


@pytest.fixture
def other_tenant_order(db):
    return OrderFactory()


NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
SEED = 7


@pytest.fixture(scope="module")
def seeded_world(django_db_setup, django_db_blocker):
    """A `seed_all --scale small` world, committed once per module for tests that only read it,
    and deleted after them."""
    from core.loading import delete_all
    from core.seeding import seed_all

    with django_db_blocker.unblock():
        result = seed_all(scale="small", seed=SEED, now=NOW, clean=True)
        yield result
        with connection.cursor() as cursor:
            delete_all(cursor)
