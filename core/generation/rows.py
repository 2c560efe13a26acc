"""Rows as the generator yields them: one NamedTuple per table, fields in column order."""

from datetime import date, datetime
from decimal import Decimal
from typing import NamedTuple
from uuid import UUID


class TenantRow(NamedTuple):
    id: UUID
    created_at: datetime
    updated_at: datetime
    name: str
    slug: str
    tier: str
    industry: str
    country: str
    currency: str
    is_active: bool


class CustomerRow(NamedTuple):
    id: UUID
    created_at: datetime
    updated_at: datetime
    tenant_id: UUID
    customer_number: int
    email: str
    first_name: str
    last_name: str
    phone: str
    birth_date: date | None
    city: str
    region: str
    country: str
    postal_code: str
    signup_channel: str
    segment: str
    marketing_opt_in: bool
    is_active: bool


class ProductRow(NamedTuple):
    id: UUID
    created_at: datetime
    updated_at: datetime
    tenant_id: UUID
    sku: str
    name: str
    category: str
    brand: str
    price: Decimal
    cost: Decimal
    stock_quantity: int
    is_active: bool


class OrderRow(NamedTuple):
    id: UUID
    created_at: datetime
    updated_at: datetime
    tenant_id: UUID
    customer_id: UUID
    order_number: str
    status: str
    channel: str
    payment_method: str
    currency: str
    subtotal: Decimal
    discount: Decimal
    tax: Decimal
    shipping: Decimal
    total: Decimal
    shipping_city: str
    shipping_country: str
    completed_at: datetime | None
    cancelled_at: datetime | None


class OrderItemRow(NamedTuple):
    id: UUID
    created_at: datetime
    updated_at: datetime
    tenant_id: UUID
    order_id: UUID
    product_id: UUID
    sku: str
    quantity: int
    unit_price: Decimal
    line_total: Decimal


class EventRow(NamedTuple):
    id: UUID
    created_at: datetime
    updated_at: datetime
    tenant_id: UUID
    customer_id: UUID
    session_id: UUID
    event_type: str
    product_id: UUID | None
    order_id: UUID | None
    page_url: str
    referrer: str
    device: str
    search_query: str
    properties: dict | None


class SubscriptionRow(NamedTuple):
    id: UUID
    created_at: datetime
    updated_at: datetime
    tenant_id: UUID
    customer_id: UUID
    plan: str
    monthly_amount: Decimal
    currency: str
    status: str
    started_at: datetime
    trial_ends_at: datetime | None
    current_period_start: datetime | None
    current_period_end: datetime | None
    cancelled_at: datetime | None
    ended_at: datetime | None


class InvoiceRow(NamedTuple):
    id: UUID
    created_at: datetime
    updated_at: datetime
    tenant_id: UUID
    subscription_id: UUID
    customer_id: UUID
    invoice_number: str
    period_start: date
    period_end: date
    amount: Decimal
    currency: str
    status: str
    issued_at: datetime | None
    due_date: date
    paid_at: datetime | None


# Tables in the order their rows may be written (parents first) and deleted (reversed).
TABLE_ROWS: dict[str, type] = {
    "core_tenant": TenantRow,
    "core_customer": CustomerRow,
    "core_product": ProductRow,
    "core_order": OrderRow,
    "core_orderitem": OrderItemRow,
    "core_event": EventRow,
    "core_subscription": SubscriptionRow,
    "core_invoice": InvoiceRow,
}
