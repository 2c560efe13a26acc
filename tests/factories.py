"""One factory per model; children take their tenant from their parent, as the data must."""

import uuid
from datetime import timedelta
from decimal import Decimal

import factory
from django.utils import timezone

from core.models import Customer, Event, Invoice, Order, OrderItem, Product, Subscription, Tenant


class TenantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Tenant

    name = factory.Sequence(lambda n: f"Tenant {n}")
    slug = factory.Sequence(lambda n: f"tenant-{n}")
    tier = Tenant.Tier.MID_MARKET
    industry = "Retail"
    country = "US"


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    tenant = factory.SubFactory(TenantFactory)
    customer_number = factory.Sequence(lambda n: n + 1)
    email = factory.Sequence(lambda n: f"customer{n}@example.com")
    first_name = "Ada"
    last_name = "Lovelace"
    city = "London"
    country = "GB"
    signup_channel = Customer.SignupChannel.ORGANIC
    segment = Customer.Segment.MAINSTREAM


class ProductFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Product

    tenant = factory.SubFactory(TenantFactory)
    sku = factory.Sequence(lambda n: f"ELE-{n:06d}")
    name = "Noise-cancelling headphones"
    category = Product.Category.ELECTRONICS
    brand = "Acme"
    price = Decimal("199.99")
    cost = Decimal("120.00")
    stock_quantity = 25


class OrderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Order

    customer = factory.SubFactory(CustomerFactory)
    tenant = factory.SelfAttribute("customer.tenant")
    order_number = factory.Sequence(lambda n: f"SO-{n:08d}")
    status = Order.Status.PENDING
    channel = Order.Channel.WEB
    payment_method = Order.PaymentMethod.CARD
    subtotal = Decimal("199.99")
    discount = Decimal("0.00")
    tax = Decimal("16.00")
    shipping = Decimal("5.00")
    total = Decimal("220.99")
    shipping_city = "London"
    shipping_country = "GB"


class OrderItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = OrderItem

    order = factory.SubFactory(OrderFactory)
    tenant = factory.SelfAttribute("order.tenant")
    product = factory.SubFactory(ProductFactory, tenant=factory.SelfAttribute("..tenant"))
    sku = factory.SelfAttribute("product.sku")
    quantity = 1
    unit_price = factory.SelfAttribute("product.price")
    line_total = factory.LazyAttribute(lambda item: item.unit_price * item.quantity)


class EventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Event

    customer = factory.SubFactory(CustomerFactory)
    tenant = factory.SelfAttribute("customer.tenant")
    session_id = factory.LazyFunction(uuid.uuid4)
    event_type = Event.EventType.PAGE_VIEW
    page_url = "/"
    device = Event.Device.DESKTOP


class SubscriptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subscription

    customer = factory.SubFactory(CustomerFactory)
    tenant = factory.SelfAttribute("customer.tenant")
    plan = Subscription.Plan.PRO
    monthly_amount = Decimal("29.99")
    status = Subscription.Status.ACTIVE
    created_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=40))
    started_at = factory.SelfAttribute("created_at")
    current_period_start = factory.LazyFunction(lambda: timezone.now() - timedelta(days=10))
    current_period_end = factory.LazyFunction(lambda: timezone.now() + timedelta(days=20))


class InvoiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Invoice

    subscription = factory.SubFactory(SubscriptionFactory)
    tenant = factory.SelfAttribute("subscription.tenant")
    customer = factory.SelfAttribute("subscription.customer")
    invoice_number = factory.Sequence(lambda n: f"INV-{n:08d}")
    period_start = factory.LazyFunction(lambda: (timezone.now() - timedelta(days=10)).date())
    period_end = factory.LazyFunction(lambda: (timezone.now() + timedelta(days=20)).date())
    amount = factory.SelfAttribute("subscription.monthly_amount")
    status = Invoice.Status.SENT
    issued_at = factory.LazyFunction(lambda: timezone.now() - timedelta(days=10))
    due_date = factory.LazyFunction(lambda: (timezone.now() + timedelta(days=4)).date())
