"""Business actions on live rows: each runs in its own transaction and keeps every invariant the
seeder keeps, because it calls the same generators and rules (`core.generation`).

Two kinds of action:
- customer actions happen once per call: a sign-up, a browsing session, an order, a profile
  edit, a price change, an erasure request, pruning an old abandoned cart;
- time-driven actions do what has fallen due by the simulated clock, oldest first: orders moving
  on (payment clears, then they ship), trials ending, monthly renewals with their invoices, and
  invoices moving through their story (draft, sent, paid or overdue). Being driven by time, not
  by the number of actions, they keep the data in shape over weeks at any pace or speed-up.

Concurrency: due rows are claimed with FOR UPDATE SKIP LOCKED, numbers are taken under a lock,
every transition is guarded by the status it starts from, and picks never see rows from a
simulated future. An action returns its row changes as {(table, "insert"|"update"|"delete"): n}.
"""

import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

from core.generation.billing import (
    MONTHLY_PLAN_CHANGE,
    billing_month,
    billing_period,
    changed_plan,
    invoice_row,
    invoice_status_now,
    new_subscription,
    renewal_outcome,
    subscribes,
    trial_outcome,
)
from core.generation.clock import DAY, Timeline
from core.generation.customers import CustomerRef, customer_rows, phone_number
from core.generation.events import DEVICES, SESSION_SPAN, browsing_session, purchase_session
from core.generation.orders import (
    PENDING_FOR,
    PROCESSING_FOR,
    Purchase,
    order_rows,
    settled_status,
    settled_status_sql,
)
from core.generation.pools import Pools
from core.generation.profiles import TIERS
from core.generation.randomness import derive_rng, new_uuid
from core.generation.rules import money, order_number, plan_amount
from core.generation.tenants import Catalog, TenantRef, repriced_cents
from core.seeding.loading import CopyWriter
from core.seeding.stored import (
    last_customer_number,
    last_order_sequences,
    stored_catalog,
    stored_subscriptions,
)

Changes = Counter
# Due rows one time-driven action takes on at most (a warehouse or billing run): enough to
# drain what falls due between two runs even at high --speedup, where a simulated day passes
# in a few dozen actions and renewals cluster on some days of the month.
DUE_BATCH = 50
# Open invoices a billing run looks at to see whether their customer has paid.
PAYMENT_CHECKS = 4
# An invoice's progress, in the only direction it may move.
INVOICE_PROGRESS = {"draft": 0, "sent": 1, "overdue": 2, "paid": 3}
# Times an order re-reads its catalogue when another worker has just changed a price in it.
PRICE_READS = 3


@dataclass
class World:
    """What an action needs: a cursor in its transaction, the clock, pools, catalogue cache."""

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

    def scope(self, table: str, where: str, params) -> tuple[str, list]:
        """`where`, limited to the focused tenant and to rows that exist by the simulated clock
        (another worker may be a moment ahead)."""
        conditions = [where] if where else []
        values = list(params)
        if self.tenant_id is not None:
            conditions.append("id = %s" if table == "core_tenant" else "tenant_id = %s")
            values.append(self.tenant_id)
        conditions.append("created_at <= %s")
        values.append(self.now)
        return " AND ".join(conditions), values

    def pick(self, rng: random.Random, table: str, columns: str, where: str = "", params=()):
        """A random row of `table` matching `where`, or None: the first at or after a random
        key (an index lookup, and the same pick for the same seed and data)."""
        filters, values = self.scope(table, where, params)
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

    def due(
        self, table: str, columns: str, where: str, params, order_by: str, limit: int = DUE_BATCH
    ) -> list[tuple]:
        """The oldest rows that have fallen due, locked for this transaction; rows another
        worker holds are skipped, not waited for."""
        filters, values = self.scope(table, where, params)
        self.cursor.execute(
            f"SELECT {columns} FROM {table} WHERE {filters} ORDER BY {order_by}, id LIMIT %s "
            "FOR UPDATE SKIP LOCKED",
            [*values, limit],
        )
        return self.cursor.fetchall()

    def insert(self, changes: Changes, table: str, rows: list) -> None:
        if rows:
            CopyWriter(self.raw_connection).write(table, rows)
            changes[(table, "insert")] += len(rows)

    def execute(self, changes: Changes, table: str, op: str, sql: str, params) -> int:
        self.cursor.execute(sql, params)
        changes[(table, op)] += self.cursor.rowcount
        return self.cursor.rowcount

    def action_seed(self, rng: random.Random) -> int:
        """A seed for generators that derive their own randomness (one per action, so rows
        made by different actions and different runs never share a key)."""
        return rng.getrandbits(63)


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


def lock_customer(world: World, customer_id: UUID) -> bool:
    """Hold the customer for this transaction (their order numbers, or their erasure); False if
    they are gone."""
    world.cursor.execute("SELECT 1 FROM core_customer WHERE id = %s FOR UPDATE", [customer_id])
    return world.cursor.fetchone() is not None


# --- customer actions -------------------------------------------------------------------------


def signup(world: World, rng: random.Random) -> Changes:
    """A new customer; the tier's share of them take out a subscription at once."""
    changes = Changes()
    tenant = world.pick(rng, "core_tenant", "id, tier, industry, created_at")
    if tenant is None:
        return changes
    ref = TenantRef(tenant[0], tenant[1], tenant[2], tenant[3].timestamp())
    # Customer numbers are per tenant: one sign-up at a time takes the next.
    world.cursor.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('core_customer.customer_number:' || %s, 0))",
        [str(ref.id)],
    )
    number = last_customer_number(ref.id) + 1
    seed = world.action_seed(rng)
    row = customer_rows(
        seed=seed,
        tenant=ref,
        numbers=range(number, number + 1),
        clock=Timeline(world.now, days=1),
        pools=world.pools,
    )[0]
    row = row._replace(created_at=world.now, updated_at=world.now)
    world.insert(changes, "core_customer", [row])
    if subscribes(seed, ref.id, number, TIERS[ref.tier].subscription_rate):
        subscription = new_subscription(
            rng=rng, tenant_id=ref.id, customer_id=row.id, tier=ref.tier, started=world.now
        )
        world.insert(changes, "core_subscription", [subscription])
        if subscription.status == "active":
            raise_invoices(world, changes, subscription.id, until_month=0)
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


def current_prices(world: World, products: list[UUID]) -> dict[UUID, int]:
    """The products' prices now, held (FOR SHARE) until the order commits."""
    world.cursor.execute(
        "SELECT id, price FROM core_product WHERE id = ANY(%s::uuid[]) ORDER BY id FOR SHARE",
        [products],
    )
    return {id: int(price * 100) for id, price in world.cursor.fetchall()}


def place_order(world: World, rng: random.Random) -> Changes:
    """A cart becomes an order: the order, its items and its purchase session, together, at the
    products' prices now."""
    changes = Changes()
    customer = established_customer(world, rng)
    if customer is None or not lock_customer(world, customer.id):
        return changes
    catalog = world.catalog(customer.tenant_id)
    if not len(catalog):
        return changes
    sequence = last_order_sequences([customer.id]).get(customer.id, 0) + 1
    placed = world.now.timestamp()
    state = rng.getstate()
    for _ in range(PRICE_READS):
        order, items = order_rows(
            rng=rng,
            customer=customer,
            catalog=catalog,
            placed_at=placed,
            now=placed,
            number=order_number(world.now, customer.number, sequence),
        )
        prices = current_prices(world, [item.product_id for item in items])
        if all(prices.get(i.product_id) == int(i.unit_price * 100) for i in items):
            break
        # Another worker changed a price since the catalogue was read: read it again and
        # make the same draws against it.
        world.catalogs.pop(customer.tenant_id, None)
        catalog = world.catalog(customer.tenant_id)
        rng.setstate(state)
    else:
        return changes  # prices kept moving under us; this customer will order another time
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
    """A price change (still a shop price) and a stock movement."""
    changes = Changes()
    row = world.pick(rng, "core_product", "id, tenant_id, price")
    if row is None:
        return changes
    product_id, tenant_id, price = row
    world.execute(
        changes,
        "core_product",
        "update",
        "UPDATE core_product SET price = %s, stock_quantity = %s, updated_at = %s WHERE id = %s",
        [money(repriced_cents(rng, int(price * 100))), rng.randint(0, 400), world.now, product_id],
    )
    world.catalogs.pop(tenant_id, None)  # orders must take the new price
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
    if row is None or not lock_customer(world, row[0]):
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


# --- time-driven actions ----------------------------------------------------------------------


ORDER_TRANSITIONS = {
    "processing": "status = 'processing'",
    "completed": "status = 'completed', completed_at = %(now)s",
    "cancelled": "status = 'cancelled', cancelled_at = %(now)s",
}


def fulfil_orders(world: World, rng: random.Random) -> Changes:
    """Orders whose payment has cleared move to processing (or are cancelled); orders processed
    long enough ship. An order goes where `settled_status` says it ends, so orders that stay
    pending or processing are left alone, and the status mix of old orders holds."""
    changes = Changes()
    settled = settled_status_sql()
    for status, waited, column in (
        ("processing", PROCESSING_FOR, "updated_at"),
        ("pending", PENDING_FOR, "created_at"),
    ):
        due = world.due(
            "core_order",
            "id",
            f"status = %s AND {column} <= %s AND {settled} <> %s",
            [status, world.now - timedelta(seconds=waited), status],
            order_by=column,
        )
        for (order_id,) in due:
            target = settled_status(order_id)
            if status == "pending" and target == "completed":
                target = "processing"  # paid; it ships later
            if target not in ORDER_TRANSITIONS:
                continue
            world.execute(
                changes,
                "core_order",
                "update",
                f"UPDATE core_order SET {ORDER_TRANSITIONS[target]}, updated_at = %(now)s "
                "WHERE id = %(id)s AND status = %(status)s",
                {"now": world.now, "id": order_id, "status": status},
            )
    return changes


def raise_invoices(world: World, changes: Changes, subscription_id: UUID, until_month: int) -> None:
    """Raise the subscription's invoices up to its `until_month`-th period, those missing."""
    for ref, invoiced in stored_subscriptions(None, ids=[subscription_id]):
        if ref.billing_starts is None:
            return
        world.insert(
            changes,
            "core_invoice",
            [
                invoice_row(
                    seed=world.seed,
                    subscription=ref,
                    month=month,
                    now=world.now,
                    raised_at=world.now,
                )
                for month in range(until_month + 1)
                if billing_period(ref.billing_starts, month)[0].date() not in invoiced
            ],
        )


def end_trials(world: World, rng: random.Random) -> Changes:
    """Trials whose fourteen days are over convert (and are billed from then), are cancelled
    or lapse, as `trial_outcome` says."""
    changes = Changes()
    due = world.due(
        "core_subscription",
        "id, trial_ends_at",
        "status = 'trial' AND trial_ends_at <= %s",
        [world.now],
        order_by="trial_ends_at",
    )
    for subscription_id, trial_ends in due:
        outcome = trial_outcome(derive_rng(world.seed, "trial", subscription_id))
        if outcome == "converted":
            month = billing_month(trial_ends, world.now)
            start, end = billing_period(trial_ends, month)
            world.execute(
                changes,
                "core_subscription",
                "update",
                "UPDATE core_subscription SET status = 'active', current_period_start = %s, "
                "current_period_end = %s, updated_at = %s WHERE id = %s AND status = 'trial'",
                [start, end, world.now, subscription_id],
            )
            raise_invoices(world, changes, subscription_id, until_month=month)
            continue
        cancelled = "trial_ends_at" if outcome == "cancelled" else "NULL"
        world.execute(
            changes,
            "core_subscription",
            "update",
            f"UPDATE core_subscription SET status = %s, cancelled_at = {cancelled}, "
            "ended_at = trial_ends_at, updated_at = %s WHERE id = %s AND status = 'trial'",
            [outcome, world.now, subscription_id],
        )
    return changes


def renew_subscriptions(world: World, rng: random.Random) -> Changes:
    """Paid months that have ended: each renews (now and then on another plan) and raises the
    next month's invoice, or the customer cancels, or the payment fails and it lapses, as
    `renewal_outcome` says. A subscription left behind by a pause catches up month by month."""
    changes = Changes()
    due = world.due(
        "core_subscription",
        "id, plan, coalesce(trial_ends_at, started_at), current_period_end",
        "status = 'active' AND current_period_end <= %s",
        [world.now],
        order_by="current_period_end",
    )
    for subscription_id, plan, anchor, period_end in due:
        month = billing_month(anchor, period_end)  # the month that begins now
        while True:
            renewal = derive_rng(world.seed, "renewal", subscription_id, month)
            outcome = renewal_outcome(renewal)
            if outcome != "renew":
                break
            if renewal.random() < MONTHLY_PLAN_CHANGE:
                plan = changed_plan(renewal, plan)
            start, end = billing_period(anchor, month)
            if end > world.now:
                break
            month += 1
        if outcome == "renew":
            world.execute(
                changes,
                "core_subscription",
                "update",
                "UPDATE core_subscription SET plan = %s, monthly_amount = %s, "
                "current_period_start = %s, current_period_end = %s, updated_at = %s "
                "WHERE id = %s AND status = 'active'",
                [plan, plan_amount(plan), start, end, world.now, subscription_id],
            )
            raise_invoices(world, changes, subscription_id, until_month=month)
            continue
        # It ends where the month it does not renew into begins.
        ended = billing_period(anchor, month)[0]
        status, cancelled = ("cancelled", ended) if outcome == "cancel" else ("expired", None)
        world.execute(
            changes,
            "core_subscription",
            "update",
            "UPDATE core_subscription SET status = %s, cancelled_at = %s, ended_at = %s, "
            "updated_at = %s WHERE id = %s AND status = 'active'",
            [status, cancelled, ended, world.now, subscription_id],
        )
        raise_invoices(world, changes, subscription_id, until_month=month - 1)
    return changes


def settle_invoices(world: World, rng: random.Random) -> Changes:
    """Invoices move on through their story (`invoice_status`): drafts are sent, customers pay,
    unpaid invoices past their due date become overdue. Only forwards."""
    changes = Changes()
    columns = "id, subscription_id, period_start, created_at, status"
    candidates = world.due(
        "core_invoice",
        columns,
        "(status = 'draft' AND created_at <= %s) OR (status = 'sent' AND due_date < %s)",
        [world.now - timedelta(seconds=DAY), world.now.date()],
        order_by="created_at",
    )
    for _ in range(PAYMENT_CHECKS):
        row = world.pick(rng, "core_invoice", columns, "status IN ('sent', 'overdue')")
        if row is not None and row not in candidates:
            candidates.append(row)
    for invoice_id, subscription_id, period_start, raised, status in candidates:
        target, _, _ = invoice_status_now(
            seed=world.seed,
            subscription_id=subscription_id,
            period_start=period_start,
            raised=raised,
            now=world.now,
        )
        if INVOICE_PROGRESS.get(target, -1) <= INVOICE_PROGRESS[status]:
            continue
        world.execute(
            changes,
            "core_invoice",
            "update",
            "UPDATE core_invoice SET status = %s, issued_at = coalesce(issued_at, %s), "
            "paid_at = %s, updated_at = %s WHERE id = %s AND status = %s",
            [
                target,
                world.now,
                world.now if target == "paid" else None,
                world.now,
                invoice_id,
                status,
            ],
        )
    return changes


ACTIONS = {
    "signup": (signup, 0.06),
    "browse": (browse, 0.28),
    "order": (place_order, 0.16),
    "fulfil": (fulfil_orders, 0.17),
    "edit_profile": (edit_profile, 0.06),
    "reprice": (reprice, 0.06),
    "trials": (end_trials, 0.04),
    "renewals": (renew_subscriptions, 0.05),
    "invoices": (settle_invoices, 0.07),
    "erasure": (erase_customer, 0.01),
    "prune": (prune_abandoned_carts, 0.04),
}
