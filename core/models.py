"""The multi-tenant shop: eight UUID-keyed tables, `core_tenant` … `core_invoice`.

Every tenant-owned row carries `tenant_id`, and every reference between tenant-owned rows is a
composite foreign key `(tenant_id, x_id) -> x(tenant_id, id)` (added in migration 0002), so the
database itself refuses a row that points into another tenant. Django's own single-column
constraints are therefore switched off (`db_constraint=False`) on those references.
"""

import uuid
from decimal import Decimal

from django.db import models
from django.db.models import F, Q
from django.utils import timezone

MONEY = {"max_digits": 12, "decimal_places": 2}


class TimestampedModel(models.Model):
    """UUID key, back-datable `created_at`, and an `updated_at` that moves on every change.

    A database trigger (migration 0002) sets `updated_at` to now() on any UPDATE that does not
    set it itself, so raw SQL and `QuerySet.update()` move it too; writers that model time (the
    seeder, the simulator) set it explicitly.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        abstract = True

    def save(self, *args, **kwargs):
        if not self._state.adding:
            self.updated_at = timezone.now()
        super().save(*args, **kwargs)


def tenant_reference(
    to: str, *, related_name: str, null: bool = False, db_index: bool = True, on_delete=None
):
    """A foreign key to a tenant-owned row; the composite key in migration 0002 enforces it.

    `db_index=False` where a composite or partial index of the model already leads with it.
    By default a delete cascades to required references and empties optional ones.
    """
    return models.ForeignKey(
        to,
        on_delete=on_delete or (models.SET_NULL if null else models.CASCADE),
        null=null,
        blank=null,
        db_constraint=False,
        db_index=db_index,
        related_name=related_name,
    )


def owning_tenant():
    # The (tenant_id, …) composite indexes below serve tenant lookups; no lone index needed.
    return models.ForeignKey("Tenant", on_delete=models.CASCADE, db_index=False)


def timestamps_in_order(name: str) -> models.CheckConstraint:
    return models.CheckConstraint(
        condition=Q(updated_at__gte=F("created_at")), name=f"{name}_updated_after_created"
    )


class TenantScopedQuerySet(models.QuerySet):
    def for_tenant(self, tenant: "Tenant | uuid.UUID"):
        return self.filter(tenant=tenant)


class Tenant(TimestampedModel):
    class Tier(models.TextChoices):
        ENTERPRISE = "enterprise", "Enterprise"
        MID_MARKET = "mid_market", "Mid-market"
        SMALL_BUSINESS = "small_business", "Small business"

    name = models.CharField(max_length=120, unique=True)
    slug = models.SlugField(max_length=60, unique=True)
    tier = models.CharField(max_length=20, choices=Tier.choices)
    industry = models.CharField(max_length=60)
    country = models.CharField(max_length=2, help_text="ISO 3166-1 alpha-2")
    currency = models.CharField(max_length=3, default="USD")
    is_active = models.BooleanField(default=True)

    class Meta:
        indexes = [models.Index(fields=["tier"], name="tenant_tier_idx")]
        constraints = [timestamps_in_order("tenant")]

    def __str__(self) -> str:
        return self.name


class Customer(TimestampedModel):
    class SignupChannel(models.TextChoices):
        ORGANIC = "organic", "Organic search"
        PAID_SEARCH = "paid_search", "Paid search"
        SOCIAL = "social", "Social"
        REFERRAL = "referral", "Referral"
        EMAIL = "email", "Email campaign"
        AFFILIATE = "affiliate", "Affiliate"

    class Segment(models.TextChoices):
        BUDGET = "budget", "Budget"
        MAINSTREAM = "mainstream", "Mainstream"
        PREMIUM = "premium", "Premium"
        BUSINESS = "business", "Business"

    tenant = owning_tenant()
    customer_number = models.PositiveIntegerField(help_text="Sequential per tenant")
    email = models.EmailField(max_length=254)
    first_name = models.CharField(max_length=80)
    last_name = models.CharField(max_length=80)
    phone = models.CharField(max_length=32, blank=True)
    birth_date = models.DateField(null=True, blank=True)
    city = models.CharField(max_length=80)
    region = models.CharField(max_length=80, blank=True)
    country = models.CharField(max_length=2, help_text="ISO 3166-1 alpha-2")
    postal_code = models.CharField(max_length=16, blank=True)
    signup_channel = models.CharField(max_length=20, choices=SignupChannel.choices)
    segment = models.CharField(max_length=20, choices=Segment.choices)
    marketing_opt_in = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "created_at"], name="customer_tenant_created_idx"),
            models.Index(fields=["tenant", "last_name"], name="customer_tenant_name_idx"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "id"], name="customer_tenant_key"),
            models.UniqueConstraint(fields=["tenant", "email"], name="customer_email_per_tenant"),
            models.UniqueConstraint(
                fields=["tenant", "customer_number"], name="customer_number_per_tenant"
            ),
            timestamps_in_order("customer"),
        ]

    def __str__(self) -> str:
        return f"{self.first_name} {self.last_name} <{self.email}>"


class Product(TimestampedModel):
    class Category(models.TextChoices):
        ELECTRONICS = "Electronics"
        CLOTHING = "Clothing"
        HOME = "Home"
        BOOKS = "Books"
        SPORTS = "Sports"

    tenant = owning_tenant()
    sku = models.CharField(max_length=32)
    name = models.CharField(max_length=200)
    category = models.CharField(max_length=20, choices=Category.choices)
    brand = models.CharField(max_length=80)
    price = models.DecimalField(**MONEY)
    cost = models.DecimalField(**MONEY, help_text="Unit cost, for margin analysis")
    stock_quantity = models.PositiveIntegerField(default=0)
    is_active = models.BooleanField(default=True)

    objects = TenantScopedQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "category"], name="product_tenant_category_idx"),
            models.Index(fields=["tenant", "created_at"], name="product_tenant_created_idx"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "id"], name="product_tenant_key"),
            models.UniqueConstraint(fields=["tenant", "sku"], name="product_sku_per_tenant"),
            models.CheckConstraint(condition=Q(price__gte=0), name="product_price_non_negative"),
            models.CheckConstraint(condition=Q(cost__gte=0), name="product_cost_non_negative"),
            timestamps_in_order("product"),
        ]

    def __str__(self) -> str:
        return f"{self.sku} {self.name}"


class OrderQuerySet(TenantScopedQuerySet):
    def completed(self):
        return self.filter(status=Order.Status.COMPLETED)


class Order(TimestampedModel):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PROCESSING = "processing", "Processing"
        COMPLETED = "completed", "Completed"
        CANCELLED = "cancelled", "Cancelled"

    class PaymentMethod(models.TextChoices):
        CARD = "card", "Card"
        PAYPAL = "paypal", "PayPal"
        APPLE_PAY = "apple_pay", "Apple Pay"
        BANK_TRANSFER = "bank_transfer", "Bank transfer"

    class Channel(models.TextChoices):
        WEB = "web", "Web"
        MOBILE_APP = "mobile_app", "Mobile app"

    tenant = owning_tenant()
    customer = tenant_reference("Customer", related_name="orders", db_index=False)
    order_number = models.CharField(max_length=20, help_text="Human-readable, unique per tenant")
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    channel = models.CharField(max_length=20, choices=Channel.choices)
    payment_method = models.CharField(max_length=20, choices=PaymentMethod.choices)
    currency = models.CharField(max_length=3, default="USD")
    subtotal = models.DecimalField(**MONEY, default=Decimal("0.00"))
    discount = models.DecimalField(**MONEY, default=Decimal("0.00"))
    tax = models.DecimalField(**MONEY, default=Decimal("0.00"))
    shipping = models.DecimalField(**MONEY, default=Decimal("0.00"))
    total = models.DecimalField(**MONEY, default=Decimal("0.00"))
    shipping_city = models.CharField(max_length=80)
    shipping_country = models.CharField(max_length=2)
    completed_at = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)

    objects = OrderQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "created_at"], name="order_tenant_created_idx"),
            models.Index(fields=["tenant", "status"], name="order_tenant_status_idx"),
            models.Index(fields=["customer", "created_at"], name="order_customer_created_idx"),
            # Partial: only orders still moving; the simulator takes the oldest due from here.
            models.Index(
                fields=["created_at"],
                name="order_in_flight_idx",
                condition=Q(status__in=["pending", "processing"]),
            ),
        ]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "id"], name="order_tenant_key"),
            models.UniqueConstraint(
                fields=["tenant", "order_number"], name="order_number_per_tenant"
            ),
            models.CheckConstraint(
                condition=Q(subtotal__gte=0, discount__gte=0, tax__gte=0, shipping__gte=0),
                name="order_amounts_non_negative",
            ),
            models.CheckConstraint(
                condition=Q(discount__lte=F("subtotal")), name="order_discount_within_subtotal"
            ),
            models.CheckConstraint(
                condition=Q(total=F("subtotal") - F("discount") + F("tax") + F("shipping")),
                name="order_total_adds_up",
            ),
            models.CheckConstraint(
                condition=Q(status="completed", completed_at__isnull=False)
                | (~Q(status="completed") & Q(completed_at__isnull=True)),
                name="order_completed_at_iff_completed",
            ),
            models.CheckConstraint(
                condition=Q(status="cancelled", cancelled_at__isnull=False)
                | (~Q(status="cancelled") & Q(cancelled_at__isnull=True)),
                name="order_cancelled_at_iff_cancelled",
            ),
            timestamps_in_order("order"),
        ]

    def __str__(self) -> str:
        return self.order_number


class OrderItem(TimestampedModel):
    tenant = owning_tenant()
    order = tenant_reference("Order", related_name="items")
    # An ordered product stays: deleting it would take lines out of past orders.
    product = tenant_reference("Product", related_name="order_items", on_delete=models.PROTECT)
    sku = models.CharField(max_length=32, help_text="The product's SKU when ordered")
    quantity = models.PositiveIntegerField()
    unit_price = models.DecimalField(**MONEY)
    line_total = models.DecimalField(**MONEY)

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "created_at"], name="orderitem_tenant_created_idx"),
        ]
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gte=1), name="orderitem_quantity_min_1"),
            models.CheckConstraint(
                condition=Q(unit_price__gte=0), name="orderitem_unit_price_non_negative"
            ),
            models.CheckConstraint(
                condition=Q(line_total=F("unit_price") * F("quantity")),
                name="orderitem_line_total_adds_up",
            ),
            timestamps_in_order("orderitem"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.sku}"


class Event(TimestampedModel):
    """One tracked interaction; `created_at` is when it happened."""

    class EventType(models.TextChoices):
        PAGE_VIEW = "page_view", "Page view"
        PRODUCT_VIEW = "product_view", "Product view"
        SEARCH = "search", "Search"
        ADD_TO_CART = "add_to_cart", "Add to cart"
        CHECKOUT = "checkout", "Checkout"
        PURCHASE = "purchase", "Purchase"

    class Device(models.TextChoices):
        DESKTOP = "desktop", "Desktop"
        MOBILE = "mobile", "Mobile"
        TABLET = "tablet", "Tablet"

    tenant = owning_tenant()
    customer = tenant_reference("Customer", related_name="events", db_index=False)
    session_id = models.UUIDField()
    event_type = models.CharField(max_length=20, choices=EventType.choices)
    product = tenant_reference("Product", null=True, related_name="events", db_index=False)
    # A purchase event must keep its order (event_order_iff_purchase): it goes with it.
    order = tenant_reference(
        "Order", null=True, related_name="events", db_index=False, on_delete=models.CASCADE
    )
    page_url = models.CharField(max_length=255)
    referrer = models.CharField(max_length=255, blank=True)
    device = models.CharField(max_length=10, choices=Device.choices)
    search_query = models.CharField(max_length=120, blank=True)
    # Small and optional on purpose: DMS moves json/jsonb as LOBs.
    properties = models.JSONField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "created_at"], name="event_tenant_created_idx"),
            models.Index(fields=["customer", "created_at"], name="event_customer_created_idx"),
            models.Index(fields=["session_id"], name="event_session_idx"),
            # Partial: most events have neither, and the index only serves lookups and cascades.
            models.Index(
                fields=["product"], name="event_product_idx", condition=Q(product__isnull=False)
            ),
            models.Index(
                fields=["order"], name="event_order_idx", condition=Q(order__isnull=False)
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(event_type="purchase", order__isnull=False)
                | (~Q(event_type="purchase") & Q(order__isnull=True)),
                name="event_order_iff_purchase",
            ),
            timestamps_in_order("event"),
        ]

    def __str__(self) -> str:
        return f"{self.event_type} @ {self.created_at:%Y-%m-%d %H:%M}"


class SubscriptionQuerySet(TenantScopedQuerySet):
    def active(self):
        return self.filter(status=Subscription.Status.ACTIVE)


class Subscription(TimestampedModel):
    class Plan(models.TextChoices):
        BASIC = "basic", "Basic"
        PRO = "pro", "Pro"
        PREMIUM = "premium", "Premium"
        ENTERPRISE = "enterprise", "Enterprise"

    class Status(models.TextChoices):
        TRIAL = "trial", "Trial"
        ACTIVE = "active", "Active"
        CANCELLED = "cancelled", "Cancelled"
        EXPIRED = "expired", "Expired"

    tenant = owning_tenant()
    customer = tenant_reference("Customer", related_name="subscriptions", db_index=False)
    plan = models.CharField(max_length=20, choices=Plan.choices)
    monthly_amount = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3, default="USD")
    status = models.CharField(max_length=20, choices=Status.choices)
    started_at = models.DateTimeField()
    trial_ends_at = models.DateTimeField(null=True, blank=True)
    current_period_start = models.DateTimeField(null=True, blank=True)
    current_period_end = models.DateTimeField(null=True, blank=True)
    cancelled_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    objects = SubscriptionQuerySet.as_manager()

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "status"], name="subscr_tenant_status_idx"),
            models.Index(fields=["tenant", "created_at"], name="subscr_tenant_created_idx"),
            models.Index(fields=["customer"], name="subscr_customer_idx"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "id"], name="subscription_tenant_key"),
            models.CheckConstraint(
                condition=Q(monthly_amount__gte=0), name="subscription_amount_non_negative"
            ),
            models.CheckConstraint(
                condition=~Q(status="trial")
                | Q(trial_ends_at__isnull=False, ended_at__isnull=True),
                name="subscription_trial_has_trial_end",
            ),
            models.CheckConstraint(
                condition=~Q(status="active") | Q(cancelled_at__isnull=True, ended_at__isnull=True),
                name="subscription_active_not_ended",
            ),
            models.CheckConstraint(
                condition=~Q(status="cancelled")
                | Q(cancelled_at__isnull=False, ended_at__isnull=False),
                name="subscription_cancelled_has_dates",
            ),
            models.CheckConstraint(
                condition=~Q(status="expired") | Q(ended_at__isnull=False),
                name="subscription_expired_has_end",
            ),
            models.CheckConstraint(
                condition=Q(started_at__gte=F("created_at")),
                name="subscription_starts_after_created",
            ),
            timestamps_in_order("subscription"),
        ]

    def __str__(self) -> str:
        return f"{self.get_plan_display()} ({self.status})"


class Invoice(TimestampedModel):
    """One billing month of a subscription; `created_at` is when the invoice was raised."""

    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        SENT = "sent", "Sent"
        PAID = "paid", "Paid"
        OVERDUE = "overdue", "Overdue"
        CANCELLED = "cancelled", "Cancelled"

    tenant = owning_tenant()
    subscription = tenant_reference("Subscription", related_name="invoices", db_index=False)
    customer = tenant_reference("Customer", related_name="invoices")
    invoice_number = models.CharField(max_length=20, help_text="Unique per tenant")
    period_start = models.DateField()
    period_end = models.DateField()
    amount = models.DecimalField(**MONEY)
    currency = models.CharField(max_length=3, default="USD")
    status = models.CharField(max_length=20, choices=Status.choices)
    issued_at = models.DateTimeField(null=True, blank=True)
    due_date = models.DateField()
    paid_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["tenant", "status"], name="invoice_tenant_status_idx"),
            models.Index(fields=["tenant", "created_at"], name="invoice_tenant_created_idx"),
            models.Index(fields=["subscription", "period_start"], name="invoice_sub_period_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "invoice_number"], name="invoice_number_per_tenant"
            ),
            models.UniqueConstraint(
                fields=["subscription", "period_start"], name="invoice_one_per_period"
            ),
            models.CheckConstraint(condition=Q(amount__gte=0), name="invoice_amount_non_negative"),
            models.CheckConstraint(
                condition=Q(period_end__gt=F("period_start")), name="invoice_period_not_empty"
            ),
            models.CheckConstraint(
                condition=Q(status="paid", paid_at__isnull=False)
                | (~Q(status="paid") & Q(paid_at__isnull=True)),
                name="invoice_paid_at_iff_paid",
            ),
            models.CheckConstraint(
                condition=Q(status="draft") | Q(issued_at__isnull=False),
                name="invoice_issued_unless_draft",
            ),
            timestamps_in_order("invoice"),
        ]

    def __str__(self) -> str:
        return self.invoice_number
