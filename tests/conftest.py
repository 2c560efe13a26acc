import pytest

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
