"""Business actions on live rows: each runs in its own transaction and keeps every invariant the
seeder keeps (it uses the same generators and rules).

An action returns the row changes it made, as {(table, "insert"|"update"|"delete"): count}.
Rows are picked by a random UUID from the action's own generator (the first row at or after
it, in key order): an index lookup, and the same pick for the same seed and data.
"""

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

from core.generation.catalog import Catalog, TenantRef, shop_price_cents
from core.generation.clock import Timeline
from core.generation.customers import CustomerRef, customer_rows, phone_number
from core.generation.events import DEVICES, SESSION_SPAN, browsing_session, purchase_session
from core.generation.orders import Purchase, order_rows
from core.generation.pools import Pools
from core.generation.randomness import new_uuid
from core.generation.rows import InvoiceRow, SubscriptionRow
from core.generation.rules import (
    PLAN_MONTHLY_CENTS,
    TRIAL_LENGTH,
    add_months,
    invoice_due_date,
    invoice_number,
    money,
    order_number,
    plan_amount,
)
from core.loading import CopyWriter
from core.seeding import last_customer_number, last_order_sequences, stored_catalog

Changes = Counter


@dataclass
class World:
    """What the simulator keeps between actions: cursor, clock, pools, catalogues."""

    cursor: object
    raw_connection: object
    seed: int
    pools: Pools
    now: datetime
    tenant_id: UUID | None = None
    catalogs: dict[UUID, Catalog] = field(default_factory=dict)

    def catalog(self, tenant_id: UUID) -> Catalog:
        if tenant_id not in self.catalogs:
            self.catalogs[tenant_id] = stored_catalog(tenant_id)
        return self.catalogs[tenant_id]

    def pick(self, rng: random.Random, table: str, columns: str, where: str = "", params=()):
        """A row of `table` matching `where` (and the focused tenant), or None."""
        conditions = [where] if where else []
        values = list(params)
        if self.tenant_id is not None:
            conditions.append("id = %s" if table == "core_tenant" else "tenant_id = %s")
            values.append(self.tenant_id)
        filters = " AND ".join(conditions) or "TRUE"
        start = new_uuid(rng)
        for bound in ("id >= %s", "id < %s"):
            self.cursor.execute(
                f"SELECT {columns} FROM {table} WHERE {bound} AND {filters} ORDER BY id LIMIT 1",
                [start, *values],
            )
            row = self.cursor.fetchone()
            if row is not None:
                return row
        return None

    def insert(self, changes: Changes, table: str, rows: list) -> None:
        if rows:
            CopyWriter(self.raw_connection).write(table, rows)
            changes[(table, "insert")] += len(rows)

    def execute(self, changes: Changes, table: str, op: str, sql: str, params) -> int:
        self.cursor.execute(sql, params)
        changes[(table, op)] += self.cursor.rowcount
        return self.cursor.rowcount


CUSTOMER_COLUMNS = "id, tenant_id, customer_number, created_at, city, country"
SESSION_SPAN_DELTA = timedelta(seconds=SESSION_SPAN)


def established_customer(world: World, rng: random.Random) -> CustomerRef | None:
    """A customer who signed up long enough ago for a whole session to fit since."""
    row = world.pick(
        rng, "core_customer", CUSTOMER_COLUMNS, "created_at < %s", [world.now - SESSION_SPAN_DELTA]
    )
    if row is None:
        return None
    id, tenant_id, number, created, city, country = row
    return CustomerRef(id, tenant_id, number, created.timestamp(), city, country)


def signup(world: World, rng: random.Random) -> Changes:
    changes = Changes()
    tenant = world.pick(rng, "core_tenant", "id, tier, industry, created_at")
    if tenant is None:
        return changes
    ref = TenantRef(tenant[0], tenant[1], tenant[2], tenant[3].timestamp())
    number = last_customer_number(ref.id) + 1
    row = customer_rows(
        seed=world.seed,
        tenant=ref,
        numbers=range(number, number + 1),
        clock=Timeline(world.now, days=1),
        pools=world.pools,
    )[0]
    world.insert(
        changes, "core_customer", [row._replace(created_at=world.now, updated_at=world.now)]
    )
    return changes


def browse(world: World, rng: random.Random) -> Changes:
    changes = Changes()
    customer = established_customer(world, rng)
    if customer is None:
        return changes
    catalog = world.catalog(customer.tenant_id)
    if len(catalog):
        events = browsing_session(
            rng, customer, DEVICES(rng), catalog, ends_at=world.now.timestamp()
        )
        world.insert(changes, "core_event", events)
    return changes


def place_order(world: World, rng: random.Random) -> Changes:
    """A cart becomes an order: the order, its items and its purchase session, together."""
    changes = Changes()
    customer = established_customer(world, rng)
    if customer is None:
        return changes
    catalog = world.catalog(customer.tenant_id)
    if not len(catalog):
        return changes
    sequence = last_order_sequences([customer.id]).get(customer.id, 0) + 1
    placed = world.now.timestamp()
    order, items = order_rows(
        rng=rng,
        customer=customer,
        catalog=catalog,
        placed_at=placed,
        now=placed,
        number=order_number(world.now, customer.number, sequence),
    )
    order = order._replace(
        status="pending", completed_at=None, cancelled_at=None, updated_at=world.now
    )
    purchase = Purchase(
        order.id,
        order.order_number,
        placed,
        tuple(i.product_id for i in items),
        tuple(i.sku for i in items),
        str(order.total),
    )
    world.insert(changes, "core_order", [order])
    world.insert(changes, "core_orderitem", items)
    world.insert(
        changes, "core_event", purchase_session(rng, customer, DEVICES(rng), purchase, catalog)
    )
    return changes


def advance_order(world: World, rng: random.Random) -> Changes:
    """pending -> processing (or cancelled); processing -> completed."""
    changes = Changes()
    status = "pending" if rng.random() < 0.5 else "processing"
    row = world.pick(rng, "core_order", "id", "status = %s", [status])
    if row is None:
        return changes
    if status == "processing":
        world.execute(
            changes,
            "core_order",
            "update",
            "UPDATE core_order SET status = 'completed', completed_at = %s, updated_at = %s "
            "WHERE id = %s",
            [world.now, world.now, row[0]],
        )
    elif rng.random() < 0.12:
        world.execute(
            changes,
            "core_order",
            "update",
            "UPDATE core_order SET status = 'cancelled', cancelled_at = %s, updated_at = %s "
            "WHERE id = %s",
            [world.now, world.now, row[0]],
        )
    else:
        world.execute(
            changes,
            "core_order",
            "update",
            "UPDATE core_order SET status = 'processing', updated_at = %s WHERE id = %s",
            [world.now, row[0]],
        )
    return changes


def edit_profile(world: World, rng: random.Random) -> Changes:
    changes = Changes()
    row = world.pick(rng, "core_customer", "id")
    if row is not None:
        world.execute(
            changes,
            "core_customer",
            "update",
            "UPDATE core_customer SET phone = %s, marketing_opt_in = %s, updated_at = %s "
            "WHERE id = %s",
            [phone_number(rng), rng.random() < 0.5, world.now, row[0]],
        )
    return changes


def reprice(world: World, rng: random.Random) -> Changes:
    """A price change (ending in .99) or a stock movement."""
    changes = Changes()
    row = world.pick(rng, "core_product", "id, tenant_id, price")
    if row is None:
        return changes
    product_id, tenant_id, price = row
    new_price = money(shop_price_cents(float(price) * rng.uniform(0.9, 1.1)))
    world.execute(
        changes,
        "core_product",
        "update",
        "UPDATE core_product SET price = %s, stock_quantity = %s, updated_at = %s WHERE id = %s",
        [new_price, rng.randint(0, 400), world.now, product_id],
    )
    world.catalogs.pop(tenant_id, None)  # orders must take the new price
    return changes


def subscription_lifecycle(world: World, rng: random.Random) -> Changes:
    """Trials convert or lapse; subscriptions change plan or are cancelled; new trials start."""
    changes = Changes()
    trial = world.pick(
        rng,
        "core_subscription",
        "id, trial_ends_at",
        "status = 'trial' AND trial_ends_at <= %s",
        [world.now],
    )
    if trial is not None:
        if rng.random() < 0.75:
            world.execute(
                changes,
                "core_subscription",
                "update",
                "UPDATE core_subscription SET status = 'active', "
                "current_period_start = trial_ends_at, "
                "current_period_end = trial_ends_at + interval '1 month', updated_at = %s "
                "WHERE id = %s",
                [world.now, trial[0]],
            )
        else:
            world.execute(
                changes,
                "core_subscription",
                "update",
                "UPDATE core_subscription SET status = 'expired', ended_at = trial_ends_at, "
                "updated_at = %s WHERE id = %s",
                [world.now, trial[0]],
            )
        return changes
    active = world.pick(rng, "core_subscription", "id, plan", "status = 'active'")
    if active is not None and rng.random() < 0.7:
        plans = list(PLAN_MONTHLY_CENTS)
        step = 1 if rng.random() < 0.6 else -1
        plan = plans[min(max(plans.index(active[1]) + step, 0), len(plans) - 1)]
        world.execute(
            changes,
            "core_subscription",
            "update",
            "UPDATE core_subscription SET plan = %s, monthly_amount = %s, updated_at = %s "
            "WHERE id = %s",
            [plan, plan_amount(plan), world.now, active[0]],
        )
    elif active is not None:
        world.execute(
            changes,
            "core_subscription",
            "update",
            "UPDATE core_subscription SET status = 'cancelled', cancelled_at = %s, ended_at = %s, "
            "updated_at = %s WHERE id = %s",
            [world.now, world.now, world.now, active[0]],
        )
    else:
        row = world.pick(
            rng,
            "core_customer",
            "id, tenant_id",
            "NOT EXISTS (SELECT 1 FROM core_subscription s WHERE s.customer_id = core_customer.id)",
        )
        if row is not None:
            plan = rng.choice(list(PLAN_MONTHLY_CENTS))
            world.insert(
                changes,
                "core_subscription",
                [
                    SubscriptionRow(
                        new_uuid(rng),
                        world.now,
                        world.now,
                        row[1],
                        row[0],
                        plan,
                        plan_amount(plan),
                        "USD",
                        "trial",
                        world.now,
                        world.now + TRIAL_LENGTH,
                        world.now,
                        world.now + TRIAL_LENGTH,
                        None,
                        None,
                    )
                ],
            )
    return changes


def billing(world: World, rng: random.Random) -> Changes:
    """Raise the next month's invoice of a subscription whose period ended; or settle one."""
    changes = Changes()
    due = world.pick(
        rng,
        "core_subscription",
        "id, tenant_id, customer_id, monthly_amount, current_period_end",
        "status = 'active' AND current_period_end <= %s",
        [world.now],
    )
    if due is not None:
        sub_id, tenant_id, customer_id, amount, period_start = due
        period_end = add_months(period_start, 1)
        world.cursor.execute(
            "SELECT c.customer_number, (SELECT count(*) FROM core_subscription o "
            "WHERE o.customer_id = c.id AND (o.created_at, o.id) <= (s.created_at, s.id)) "
            "FROM core_subscription s JOIN core_customer c ON c.id = s.customer_id WHERE s.id = %s",
            [sub_id],
        )
        number, ordinal = world.cursor.fetchone()
        world.execute(
            changes,
            "core_subscription",
            "update",
            "UPDATE core_subscription SET current_period_start = %s, current_period_end = %s, "
            "updated_at = %s WHERE id = %s",
            [period_start, period_end, world.now, sub_id],
        )
        world.cursor.execute(
            "SELECT 1 FROM core_invoice WHERE subscription_id = %s AND period_start = %s",
            [sub_id, period_start.date()],
        )
        if world.cursor.fetchone() is None:
            world.insert(
                changes,
                "core_invoice",
                [
                    InvoiceRow(
                        new_uuid(rng),
                        world.now,
                        world.now,
                        tenant_id,
                        sub_id,
                        customer_id,
                        invoice_number(period_start.date(), number, ordinal),
                        period_start.date(),
                        period_end.date(),
                        amount,
                        "USD",
                        "sent",
                        world.now,
                        invoice_due_date(world.now),
                        None,
                    )
                ],
            )
        return changes
    invoice = world.pick(rng, "core_invoice", "id, due_date", "status IN ('sent', 'overdue')")
    if invoice is None:
        return changes
    if rng.random() < 0.85:
        world.execute(
            changes,
            "core_invoice",
            "update",
            "UPDATE core_invoice SET status = 'paid', paid_at = %s, updated_at = %s WHERE id = %s",
            [world.now, world.now, invoice[0]],
        )
    elif invoice[1] < world.now.date():
        world.execute(
            changes,
            "core_invoice",
            "update",
            "UPDATE core_invoice SET status = 'overdue', updated_at = %s "
            "WHERE id = %s AND status = 'sent'",
            [world.now, invoice[0]],
        )
    return changes


# Children first: the composite foreign keys are checked statement by statement.
ERASURE_ORDER = (
    ("core_event", "customer_id = %s"),
    ("core_invoice", "customer_id = %s"),
    ("core_subscription", "customer_id = %s"),
    ("core_orderitem", "order_id IN (SELECT id FROM core_order WHERE customer_id = %s)"),
    ("core_order", "customer_id = %s"),
    ("core_customer", "id = %s"),
)


def erase_customer(world: World, rng: random.Random) -> Changes:
    """A right-to-erasure request: the customer and everything of theirs, in one transaction."""
    changes = Changes()
    row = world.pick(rng, "core_customer", "id")
    if row is None:
        return changes
    for table, condition in ERASURE_ORDER:
        world.execute(changes, table, "delete", f"DELETE FROM {table} WHERE {condition}", [row[0]])
    return changes


def prune_abandoned_carts(world: World, rng: random.Random) -> Changes:
    """Events of an old session that put something in a cart and never bought are pruned."""
    changes = Changes()
    row = world.pick(
        rng,
        "core_event",
        "session_id",
        "event_type = 'add_to_cart' AND created_at < %s",
        [world.now - timedelta(days=90)],
    )
    if row is None:
        return changes
    world.execute(
        changes,
        "core_event",
        "delete",
        "DELETE FROM core_event WHERE session_id = %s AND NOT EXISTS "
        "(SELECT 1 FROM core_event p WHERE p.session_id = %s AND p.event_type = 'purchase')",
        [row[0], row[0]],
    )
    return changes


ACTIONS = {
    "signup": (signup, 0.06),
    "browse": (browse, 0.27),
    "order": (place_order, 0.16),
    "advance_order": (advance_order, 0.17),
    "edit_profile": (edit_profile, 0.06),
    "reprice": (reprice, 0.06),
    "subscription": (subscription_lifecycle, 0.07),
    "billing": (billing, 0.1),
    "erasure": (erase_customer, 0.01),
    "prune": (prune_abandoned_carts, 0.04),
}
