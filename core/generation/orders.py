"""Orders and their items: what customers bought, when, and how far each order has got."""

import random
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from core.generation.clock import DAY, HOUR, Timeline, to_datetime
from core.generation.customers import CustomerRef
from core.generation.randomness import WeightedChoice, derive_rng, new_uuid, poisson
from core.generation.rows import OrderItemRow, OrderRow
from core.generation.rules import CURRENCY, money, order_amounts, order_number
from core.generation.tenants import Catalog

# A first order comes at least this long after signup (the purchase session fits in between).
FIRST_ORDER_AFTER_SIGNUP = 3 * HOUR
ITEMS_PER_ORDER = WeightedChoice([1, 2, 3, 4, 5], [0.4, 0.28, 0.17, 0.1, 0.05])
QUANTITY = WeightedChoice([1, 2, 3], [0.82, 0.14, 0.04])
CHANNELS = WeightedChoice.from_mapping({"web": 0.65, "mobile_app": 0.35})
PAYMENT_METHODS = WeightedChoice.from_mapping(
    {"card": 0.62, "paypal": 0.2, "apple_pay": 0.13, "bank_transfer": 0.05}
)
# Share of orders with a promotion, and its size in percent.
PROMOTION_RATE = 0.2
PROMOTION_PERCENTS = (5, 10, 15, 20)


@dataclass(frozen=True)
class Purchase:
    """An order as the event stream sees it: when it was placed and what was in the cart."""

    order_id: UUID
    order_number: str
    placed_at: float
    product_ids: tuple[UUID, ...]
    skus: tuple[str, ...]
    total: str


# Where an order ends up, whatever its age: most are completed, some cancelled, and a few stay
# pending (a bank transfer never made) or processing (back-ordered) for good. The shares are of
# the settled orders; with recent orders still in flight the whole window comes to about
# 80% completed, 10% processing, 5% pending and 5% cancelled.
SETTLED_STATUS_SHARES = (
    ("pending", 0.038),
    ("processing", 0.078),
    ("cancelled", 0.052),
    ("completed", 0.832),
)
# How long an order that moves on waits in each step: payment clears, then it ships.
PENDING_FOR = 6 * HOUR
PROCESSING_FOR = DAY
# Chance by age that an order which will move on has not yet: (pending, processing).
IN_FLIGHT_BY_AGE = ((1, 0.45, 0.35), (3, 0.15, 0.45), (14, 0.06, 0.2))


def settled_fraction(order_id: UUID) -> float:
    """The order's place in [0, 1) on the settled-status scale: the top 32 bits of its id, which
    are uniformly random. Derived from the id alone, so the seeder and the live simulator (and
    SQL, in `settled_status_sql`) agree on every order without storing anything."""
    return (order_id.int >> 96) / 2**32


def settled_status(order_id: UUID) -> str:
    fraction, bound = settled_fraction(order_id), 0.0
    for status, share in SETTLED_STATUS_SHARES:
        bound += share
        if fraction < bound:
            return status
    return SETTLED_STATUS_SHARES[-1][0]


def settled_status_sql(column: str = "id") -> str:
    """`settled_status` of a uuid column as a SQL expression."""
    top_bits = f"('x' || left(replace({column}::text, '-', ''), 8))::bit(32)::bigint"
    fraction = f"({top_bits} / 4294967296.0)"
    cases, bound = [], 0.0
    for status, share in SETTLED_STATUS_SHARES[:-1]:
        bound += share
        cases.append(f"WHEN {fraction} < {bound!r} THEN '{status}'")
    return f"(CASE {' '.join(cases)} ELSE '{SETTLED_STATUS_SHARES[-1][0]}' END)"


def order_status(rng: random.Random, age_days: float, settled: str) -> str:
    """How far an order of this age has got: an order that stays pending or processing is so
    from the start; others are in flight for a while (recent ones far more often), then settle.
    """
    if settled in ("pending", "processing"):
        return settled
    draw = rng.random()
    for days, pending, processing in IN_FLIGHT_BY_AGE:
        if age_days < days:
            if draw < pending:
                return "pending"
            if draw < pending + processing:
                return "processing"
            break
    return settled


def orders_for_customer(
    *,
    seed: int,
    customer: CustomerRef,
    catalog: Catalog,
    mean_orders: float,
    expected_share: float,
    clock: Timeline,
    first_sequence: int = 1,
) -> tuple[list[OrderRow], list[OrderItemRow], list[Purchase]]:
    """A customer's orders over their life so far: about `mean_orders` for an average customer,
    fewer for recent signups (their share of the window's activity against `expected_share`,
    the average one), and a long tail of loyal buyers.

    `first_sequence` numbers this customer's orders after the ones already stored, so that a
    second run adds new orders instead of regenerating the first ones.
    """
    rng = derive_rng(seed, "orders", customer.tenant_id, customer.number, first_sequence)
    earliest = customer.signed_up + FIRST_ORDER_AFTER_SIGNUP
    if earliest >= clock.end or not len(catalog):
        return [], [], []
    propensity = rng.gammavariate(1.5, 1 / 1.5)
    activity = clock.share_between(customer.signed_up, clock.end) / expected_share
    count = poisson(rng, mean_orders * propensity * activity)
    moments = sorted(clock.draw(rng, earliest, clock.end) for _ in range(count))
    orders, items, purchases = [], [], []
    for offset, moment in enumerate(moments):
        order, order_items = order_rows(
            rng=rng,
            customer=customer,
            catalog=catalog,
            placed_at=moment,
            now=clock.end,
            number=order_number(to_datetime(moment), customer.number, first_sequence + offset),
        )
        orders.append(order)
        items.extend(order_items)
        purchases.append(
            Purchase(
                order_id=order.id,
                order_number=order.order_number,
                placed_at=moment,
                product_ids=tuple(item.product_id for item in order_items),
                skus=tuple(item.sku for item in order_items),
                total=str(order.total),
            )
        )
    return orders, items, purchases


def order_rows(
    *,
    rng: random.Random,
    customer: CustomerRef,
    catalog: Catalog,
    placed_at: float,
    now: float,
    number: str,
) -> tuple[OrderRow, list[OrderItemRow]]:
    """One order placed at `placed_at`, with its items, status and amounts as of `now`."""
    order_id = new_uuid(rng)
    placed = to_datetime(placed_at)
    items = []
    for product in catalog.draw_distinct(rng, ITEMS_PER_ORDER(rng)):
        quantity = QUANTITY(rng)
        items.append(
            OrderItemRow(
                id=new_uuid(rng),
                created_at=placed,
                updated_at=placed,
                tenant_id=customer.tenant_id,
                order_id=order_id,
                product_id=product.id,
                sku=product.sku,
                quantity=quantity,
                unit_price=money(product.price_cents),
                line_total=money(product.price_cents * quantity),
            )
        )
    promotion = rng.choice(PROMOTION_PERCENTS) if rng.random() < PROMOTION_RATE else 0
    amounts = order_amounts([int(item.line_total * 100) for item in items], promotion)
    age = now - placed_at
    status = order_status(rng, age / DAY, settled_status(order_id))
    completed_at = cancelled_at = None
    changed: datetime = placed
    if status == "completed":
        completed_at = to_datetime(placed_at + min(age, 7 * DAY) * rng.uniform(0.1, 0.95))
        changed = completed_at
    elif status == "cancelled":
        cancelled_at = to_datetime(placed_at + min(age, 3 * DAY) * rng.uniform(0.05, 0.9))
        changed = cancelled_at
    elif status == "processing":
        changed = to_datetime(placed_at + min(age, DAY) * rng.uniform(0.05, 0.9))
    order = OrderRow(
        id=order_id,
        created_at=placed,
        updated_at=changed,
        tenant_id=customer.tenant_id,
        customer_id=customer.id,
        order_number=number,
        status=status,
        channel=CHANNELS(rng),
        payment_method=PAYMENT_METHODS(rng),
        currency=CURRENCY,
        subtotal=money(amounts["subtotal"]),
        discount=money(amounts["discount"]),
        tax=money(amounts["tax"]),
        shipping=money(amounts["shipping"]),
        total=money(amounts["total"]),
        shipping_city=customer.city,
        shipping_country=customer.country,
        completed_at=completed_at,
        cancelled_at=cancelled_at,
    )
    return order, items
