"""The rows PostgreSQL holds, read back as the generators' types: what the per-entity seed
commands build on, and what the live simulator acts on."""

from collections.abc import Iterator
from uuid import UUID

from django.db import connection

from core.generation.billing import SubscriptionRef
from core.generation.customers import CustomerRef
from core.generation.orders import Purchase
from core.generation.tenants import Catalog, Product, TenantRef

CUSTOMERS_READ_AT_ONCE = 100


def stored_tenants() -> list[TenantRef]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, tier, industry, created_at FROM core_tenant ORDER BY created_at, id"
        )
        return [
            TenantRef(id, tier, industry, created.timestamp())
            for id, tier, industry, created in cursor
        ]


def stored_catalog(tenant_id: UUID) -> Catalog:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, sku, category, price FROM core_product "
            "WHERE tenant_id = %s AND is_active ORDER BY sku",
            [tenant_id],
        )
        return Catalog(
            [Product(id, sku, category, int(price * 100)) for id, sku, category, price in cursor]
        )


def stored_customers(
    tenant_id: UUID, batch: int = CUSTOMERS_READ_AT_ONCE
) -> Iterator[list[CustomerRef]]:
    """The tenant's customers in customer-number order, a batch at a time."""
    last = 0
    while True:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id, customer_number, created_at, city, country FROM core_customer "
                "WHERE tenant_id = %s AND customer_number > %s ORDER BY customer_number LIMIT %s",
                [tenant_id, last, batch],
            )
            rows = cursor.fetchall()
        if not rows:
            return
        yield [
            CustomerRef(id, tenant_id, number, created.timestamp(), city, country)
            for id, number, created, city, country in rows
        ]
        last = rows[-1][1]


def scalar(sql: str, params: list) -> object:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()[0]


def per_customer_numbers(sql: str, customer_ids: list[UUID]) -> dict[UUID, int]:
    with connection.cursor() as cursor:
        cursor.execute(sql, [customer_ids])
        return dict(cursor.fetchall())


def last_customer_number(tenant_id: UUID) -> int:
    """The highest customer number in use (the next customer gets one more)."""
    return scalar(
        "SELECT coalesce(max(customer_number), 0) FROM core_customer WHERE tenant_id = %s",
        [tenant_id],
    )


def last_order_sequences(customer_ids: list[UUID]) -> dict[UUID, int]:
    """Each customer's highest order sequence (the last part of `rules.order_number`)."""
    return per_customer_numbers(
        "SELECT customer_id, max(substring(order_number from '-(\\d+)$')::int) "
        "FROM core_order WHERE customer_id = ANY(%s::uuid[]) GROUP BY customer_id",
        customer_ids,
    )


def unrecorded_purchases(customer_ids: list[UUID]) -> dict[UUID, list[Purchase]]:
    """Orders of these customers that have no purchase event yet, with what was in them."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT o.customer_id, o.id, o.order_number, o.created_at, o.total, "
            "       array_agg(i.product_id ORDER BY i.id), array_agg(i.sku ORDER BY i.id) "
            "FROM core_order o JOIN core_orderitem i ON i.order_id = o.id "
            "WHERE o.customer_id = ANY(%s::uuid[]) AND NOT EXISTS "
            "  (SELECT 1 FROM core_event e WHERE e.order_id = o.id AND e.event_type = 'purchase') "
            "GROUP BY o.id ORDER BY o.created_at, o.id",
            [customer_ids],
        )
        purchases: dict[UUID, list[Purchase]] = {}
        for customer_id, order_id, number, created, total, product_ids, skus in cursor:
            purchases.setdefault(customer_id, []).append(
                Purchase(
                    order_id,
                    number,
                    created.timestamp(),
                    tuple(product_ids),
                    tuple(skus),
                    str(total),
                )
            )
        return purchases


def stored_subscriptions(
    after: UUID | None, batch: int = 2000, ids: list[UUID] | None = None
) -> list[tuple[SubscriptionRef, set]]:
    """Subscriptions (in id order, after `after`; or those of `ids`) with the period starts
    already invoiced."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT s.id, s.tenant_id, s.customer_id, c.customer_number, s.monthly_amount, "
            "       s.status, s.started_at, s.trial_ends_at, s.ended_at, "
            "       (SELECT count(*) FROM core_subscription o WHERE o.customer_id = s.customer_id "
            "        AND (o.created_at, o.id) <= (s.created_at, s.id)), "
            "       (SELECT coalesce(array_agg(i.period_start), '{}') FROM core_invoice i "
            "        WHERE i.subscription_id = s.id) "
            "FROM core_subscription s JOIN core_customer c ON c.id = s.customer_id "
            "WHERE (%s::uuid IS NULL OR s.id > %s) AND (%s::uuid[] IS NULL OR s.id = ANY(%s)) "
            "ORDER BY s.id LIMIT %s",
            [after, after, ids, ids, batch],
        )
        found = []
        for (
            id,
            tenant_id,
            customer_id,
            number,
            amount,
            status,
            started,
            trial_ends,
            ended,
            ordinal,
            invoiced,
        ) in cursor:
            never_billed = status == "trial" or (
                trial_ends is not None and ended is not None and ended <= trial_ends
            )
            ref = SubscriptionRef(
                id=id,
                tenant_id=tenant_id,
                customer_id=customer_id,
                customer_number=number,
                ordinal=ordinal,
                monthly_amount=amount,
                billing_starts=None if never_billed else (trial_ends or started),
                ended_at=ended,
                cancelled=status == "cancelled",
            )
            found.append((ref, set(invoiced)))
        return found
