"""Seeding: run the generators over a plan (or over what the database holds) into a sink.

Every public function runs in one transaction: a run that fails or is interrupted leaves the
database as it was.
"""

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime

from django.db import connection, transaction

from core.errors import MissingPrerequisite
from core.generation.billing import (
    invoices_for_subscription,
    subscribes,
    subscription_for_customer,
)
from core.generation.clock import Timeline, expected_share_after_signup
from core.generation.customers import CustomerRef, customer_ref, customer_rows
from core.generation.events import events_for_customer
from core.generation.orders import orders_for_customer
from core.generation.pools import pools_for
from core.generation.profiles import TIERS, scale_factor, tier_mix
from core.generation.randomness import derive_rng
from core.generation.rows import TABLE_ROWS, TenantRow
from core.generation.tenants import (
    Catalog,
    TenantRef,
    catalog_of,
    product_rows,
    tenant_rows,
)
from core.seeding.loading import (
    CopyWriter,
    RowSink,
    delete_all,
    load_in_parallel,
    rebuild_indexes,
    restore_foreign_keys,
    set_aside_foreign_keys,
    set_aside_indexes,
    tables_are_empty,
)
from core.seeding.stored import (
    last_customer_number,
    last_order_sequences,
    per_customer_numbers,
    scalar,
    stored_catalog,
    stored_customers,
    stored_subscriptions,
    stored_tenants,
    unrecorded_purchases,
)

CUSTOMERS_PER_BATCH = 100
OnRows = Callable[[str, int], None]


@dataclass
class SeedResult:
    seed: int
    counts: dict[str, int]
    seconds: float
    deleted: dict[str, int] = field(default_factory=dict)
    copy_seconds: dict[str, float] = field(default_factory=dict)
    # Seconds of the steps around the COPYs: "clean", "indexes", "foreign keys", "statistics".
    step_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(self.counts.values())


@dataclass
class Writing:
    """What `writing` yields: the COPY writer, and what was done around the load."""

    writer: CopyWriter
    on_step: Callable[[str], None] | None = None
    deleted: dict[str, int] = field(default_factory=dict)
    step_seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        if self.on_step:
            self.on_step(name)
        started = time.monotonic()
        yield
        self.step_seconds[name] = time.monotonic() - started


@contextmanager
def writing(
    *,
    on_rows: OnRows | None,
    clean: bool = False,
    bulk: bool = False,
    on_step: Callable[[str], None] | None = None,
) -> Iterator[Writing]:
    """A transaction with a COPY writer; with `clean`, existing data is deleted first.

    Readers never wait on it: a reseed (`clean` over tables that hold rows) deletes and loads
    with the tables' keys and indexes in place, taking only the row locks any writer takes, so
    a reader sees the old rows until the new ones are whole, then the new. Children are
    deleted before their parents, so each parent's key check finds its children gone through
    their indexes, on statistics taken just before.

    `bulk` into empty tables (a first seed: nothing to read yet) drops the tables' foreign keys
    and indexes and builds them once after the load, in the same transaction: a build sorts a
    table once, while keeping an index up to date row by row lands random UUIDs all over it.
    After a bulk load the tables are analyzed, so that the next statements, a reseed's
    included, plan on what is there. `on_step` hears the name of each step as it starts.
    """
    if clean:
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {', '.join(TABLE_ROWS)}")  # readers and writers go on
    with transaction.atomic(), connection.cursor() as cursor:
        done = Writing(CopyWriter(connection.connection, on_rows), on_step)
        # Deferred foreign-key checks would queue one entry per row until commit.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        empty = tables_are_empty(cursor)
        if clean and not empty:
            with done.step("clean"):
                done.deleted.update(delete_all(cursor))
        # Nothing set aside needs putting back if the load fails: the transaction rolls back.
        keys = set_aside_foreign_keys(cursor) if bulk and empty else []
        indexes = set_aside_indexes(cursor) if bulk and empty else []
        yield done
        if indexes:
            with done.step("indexes"):
                rebuild_indexes(cursor, indexes)
        if keys:
            with done.step("foreign keys"):
                restore_foreign_keys(cursor, keys)
    if bulk:
        with done.step("statistics"), connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {', '.join(TABLE_ROWS)}")


def tenant_ref(row: TenantRow) -> TenantRef:
    return TenantRef(
        id=row.id, tier=row.tier, industry=row.industry, opened_at=row.created_at.timestamp()
    )


# --- seed_all ------------------------------------------------------------------------------


def seed_everything(
    *,
    sink: RowSink,
    scale: str,
    seed: int,
    now: datetime,
    customers_per_batch: int = CUSTOMERS_PER_BATCH,
) -> None:
    """Generate a whole world into `sink`: tenants, then per tenant its catalogue and, batch by
    batch, customers with their orders, events, subscriptions and invoices. Each of these is a
    unit of work the sink may leave to another process (`RowSink.claim`): every row derives
    its randomness from its own keys, so a unit comes out the same in any process."""
    factor = scale_factor(scale)
    clock = Timeline(now)
    pools = pools_for(seed)
    world = derive_rng(seed, "world")
    tiers = tier_mix(8 + world.randint(0, 2))
    tenants = tenant_rows(seed=seed, tiers=tiers, clock=clock, pools=pools)
    if sink.claim():
        sink.write("core_tenant", tenants)
    for index, tenant_row in enumerate(tenants):
        tenant = tenant_ref(tenant_row)
        profile = TIERS[tenant.tier]
        sizes = derive_rng(seed, "tenant-size", index)
        products = product_rows(
            seed=seed,
            tenant=tenant,
            numbers=range(1, sizes.randint(*profile.products) + 1),
            pools=pools,
        )
        if sink.claim():  # every process builds the catalogue, one writes it
            sink.write("core_product", products)
        catalog = catalog_of(products)
        customer_count = max(1, round(sizes.randint(*profile.customers) * factor))
        expected_share = expected_share_after_signup(clock, tenant.customers_from)
        for first in range(1, customer_count + 1, customers_per_batch):
            if not sink.claim():
                continue
            numbers = range(first, min(first + customers_per_batch, customer_count + 1))
            customers = customer_rows(
                seed=seed, tenant=tenant, numbers=numbers, clock=clock, pools=pools
            )
            batch: dict[str, list] = {table: [] for table in TABLE_ROWS if table != "core_tenant"}
            batch["core_customer"] = customers
            for row in customers:
                customer = customer_ref(row)
                orders, items, purchases = orders_for_customer(
                    seed=seed,
                    customer=customer,
                    catalog=catalog,
                    mean_orders=profile.orders_per_customer,
                    expected_share=expected_share,
                    clock=clock,
                )
                batch["core_order"] += orders
                batch["core_orderitem"] += items
                batch["core_event"] += events_for_customer(
                    seed=seed,
                    customer=customer,
                    purchases=purchases,
                    catalog=catalog,
                    mean_events=profile.events_per_customer,
                    expected_share=expected_share,
                    clock=clock,
                )
                if subscribes(seed, customer.tenant_id, customer.number, profile.subscription_rate):
                    subscription, ref = subscription_for_customer(
                        seed=seed, customer=customer, tier=tenant.tier, clock=clock
                    )
                    batch["core_subscription"].append(subscription)
                    batch["core_invoice"] += invoices_for_subscription(
                        seed=seed, subscription=ref, now=clock.now
                    )
            for table, rows in batch.items():
                if table != "core_product":
                    sink.write(table, rows)


def seed_all(
    *,
    scale: str,
    seed: int,
    now: datetime,
    clean: bool = False,
    on_rows: OnRows | None = None,
    on_step: Callable[[str], None] | None = None,
    customers_per_batch: int = CUSTOMERS_PER_BATCH,
) -> SeedResult:
    started = time.monotonic()

    def generate(sink: RowSink) -> None:
        seed_everything(
            sink=sink, scale=scale, seed=seed, now=now, customers_per_batch=customers_per_batch
        )

    with writing(on_rows=on_rows, clean=clean, bulk=True, on_step=on_step) as done:
        load_in_parallel(done.writer, generate)
    return SeedResult(
        seed,
        done.writer.counts,
        time.monotonic() - started,
        done.deleted,
        done.writer.copy_seconds,
        done.step_seconds,
    )


def plan_all(*, scale: str, seed: int, now: datetime) -> SeedResult:
    """The exact row counts `seed_all` would write, generated but not written."""
    started = time.monotonic()
    sink = RowSink()
    seed_everything(sink=sink, scale=scale, seed=seed, now=now)
    return SeedResult(seed, sink.counts, time.monotonic() - started)


# --- per-entity commands, working against what the database holds ---------------------------


def require_tenants() -> list[TenantRef]:
    tenants = stored_tenants()
    if not tenants:
        raise MissingPrerequisite("there are no tenants yet: run `bin/manage seed_tenants` first")
    return tenants


def seed_tenants(
    *, count: int, seed: int, now: datetime, on_rows: OnRows | None = None
) -> SeedResult:
    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM core_tenant")
        taken = [name for (name,) in cursor]
    with writing(on_rows=on_rows) as done:
        writer = done.writer
        writer.write(
            "core_tenant",
            tenant_rows(
                seed=seed,
                tiers=tier_mix(count),
                clock=Timeline(now),
                pools=pools_for(seed),
                taken_names=taken,
                first_index=len(taken),
            ),
        )
    return SeedResult(seed, writer.counts, time.monotonic() - started)


def seed_products(
    *, per_tenant: int | None, seed: int, now: datetime, on_rows: OnRows | None = None
) -> SeedResult:
    started = time.monotonic()
    tenants = require_tenants()
    pools = pools_for(seed)
    with writing(on_rows=on_rows) as done:
        writer = done.writer
        for index, tenant in enumerate(tenants):
            last = scalar(
                "SELECT coalesce(max(substring(sku from '(\\d+)$')::int), 0) FROM core_product "
                "WHERE tenant_id = %s",
                [tenant.id],
            )
            count = per_tenant or derive_rng(seed, "tenant-size", index).randint(
                *TIERS[tenant.tier].products
            )
            writer.write(
                "core_product",
                product_rows(
                    seed=seed, tenant=tenant, numbers=range(last + 1, last + count + 1), pools=pools
                ),
            )
    return SeedResult(seed, writer.counts, time.monotonic() - started)


def seed_customers(
    *, per_tenant: int | None, seed: int, now: datetime, on_rows: OnRows | None = None
) -> SeedResult:
    started = time.monotonic()
    tenants = require_tenants()
    clock, pools = Timeline(now), pools_for(seed)
    with writing(on_rows=on_rows) as done:
        writer = done.writer
        for index, tenant in enumerate(tenants):
            last = last_customer_number(tenant.id)
            count = per_tenant or derive_rng(seed, "tenant-size", index).randint(
                *TIERS[tenant.tier].customers
            )
            for first in range(last + 1, last + count + 1, CUSTOMERS_PER_BATCH):
                numbers = range(first, min(first + CUSTOMERS_PER_BATCH, last + count + 1))
                writer.write(
                    "core_customer",
                    customer_rows(
                        seed=seed, tenant=tenant, numbers=numbers, clock=clock, pools=pools
                    ),
                )
    return SeedResult(seed, writer.counts, time.monotonic() - started)


def require_customers_and_products() -> None:
    """Orders and events need both customers and products."""
    if not scalar("SELECT count(*) FROM core_customer", []):
        raise MissingPrerequisite(
            "there are no customers yet: run `bin/manage seed_customers` first"
        )
    if not scalar("SELECT count(*) FROM core_product", []):
        raise MissingPrerequisite("there are no products yet: run `bin/manage seed_products` first")


def customer_batches(
    tenants: list[TenantRef], clock: Timeline
) -> Iterator[tuple[TenantRef, Catalog, float, list[CustomerRef]]]:
    """Per tenant its catalogue and the average customer's share of activity, then its stored
    customers a batch at a time."""
    for tenant in tenants:
        catalog = stored_catalog(tenant.id)
        expected_share = expected_share_after_signup(clock, tenant.customers_from)
        for customers in stored_customers(tenant.id):
            yield tenant, catalog, expected_share, customers


def seed_orders(
    *, per_customer: float | None, seed: int, now: datetime, on_rows: OnRows | None = None
) -> SeedResult:
    started = time.monotonic()
    tenants = require_tenants()
    require_customers_and_products()
    clock = Timeline(now)
    with writing(on_rows=on_rows) as done:
        writer = done.writer
        for tenant, catalog, expected_share, customers in customer_batches(tenants, clock):
            profile_mean = TIERS[tenant.tier].orders_per_customer
            mean = per_customer if per_customer is not None else profile_mean
            placed = last_order_sequences([customer.id for customer in customers])
            orders, items = [], []
            for customer in customers:
                new_orders, new_items, _ = orders_for_customer(
                    seed=seed,
                    customer=customer,
                    catalog=catalog,
                    mean_orders=mean,
                    expected_share=expected_share,
                    clock=clock,
                    first_sequence=placed.get(customer.id, 0) + 1,
                )
                orders += new_orders
                items += new_items
            writer.write("core_order", orders)
            writer.write("core_orderitem", items)
    return SeedResult(seed, writer.counts, time.monotonic() - started)


def seed_events(
    *, per_customer: float | None, seed: int, now: datetime, on_rows: OnRows | None = None
) -> SeedResult:
    started = time.monotonic()
    tenants = require_tenants()
    require_customers_and_products()
    clock = Timeline(now)
    with writing(on_rows=on_rows) as done:
        writer = done.writer
        for tenant, catalog, expected_share, customers in customer_batches(tenants, clock):
            profile_mean = TIERS[tenant.tier].events_per_customer
            mean = per_customer if per_customer is not None else profile_mean
            ids = [customer.id for customer in customers]
            purchases = unrecorded_purchases(ids)
            sessions = per_customer_numbers(
                "SELECT customer_id, count(DISTINCT session_id) FROM core_event "
                "WHERE customer_id = ANY(%s::uuid[]) GROUP BY customer_id",
                ids,
            )
            events = []
            for customer in customers:
                events += events_for_customer(
                    seed=seed,
                    customer=customer,
                    purchases=purchases.get(customer.id, []),
                    catalog=catalog,
                    mean_events=mean,
                    expected_share=expected_share,
                    clock=clock,
                    generation=sessions.get(customer.id, 0),
                )
            writer.write("core_event", events)
    return SeedResult(seed, writer.counts, time.monotonic() - started)


def seed_subscriptions(
    *, rate: float | None, seed: int, now: datetime, on_rows: OnRows | None = None
) -> SeedResult:
    """Subscribe `rate` of the customers who have no subscription yet."""
    started = time.monotonic()
    tenants = require_tenants()
    if not scalar("SELECT count(*) FROM core_customer", []):
        raise MissingPrerequisite(
            "there are no customers yet: run `bin/manage seed_customers` first"
        )
    clock = Timeline(now)
    with writing(on_rows=on_rows) as done:
        writer = done.writer
        for tenant in tenants:
            share = rate if rate is not None else TIERS[tenant.tier].subscription_rate
            for customers in stored_customers(tenant.id):
                subscribed = per_customer_numbers(
                    "SELECT customer_id, count(*) FROM core_subscription "
                    "WHERE customer_id = ANY(%s::uuid[]) GROUP BY customer_id",
                    [customer.id for customer in customers],
                )
                writer.write(
                    "core_subscription",
                    [
                        subscription_for_customer(
                            seed=seed, customer=customer, tier=tenant.tier, clock=clock
                        )[0]
                        for customer in customers
                        if customer.id not in subscribed
                        and subscribes(seed, customer.tenant_id, customer.number, share)
                    ],
                )
    return SeedResult(seed, writer.counts, time.monotonic() - started)


def seed_invoices(*, seed: int, now: datetime, on_rows: OnRows | None = None) -> SeedResult:
    """Raise every billing month's invoice that is missing, for every subscription."""
    started = time.monotonic()
    if not scalar("SELECT count(*) FROM core_subscription", []):
        raise MissingPrerequisite(
            "there are no subscriptions yet: run `bin/manage seed_subscriptions` first"
        )
    clock = Timeline(now)
    with writing(on_rows=on_rows) as done:
        writer = done.writer
        after = None
        while batch := stored_subscriptions(after):
            invoices = []
            for ref, invoiced in batch:
                invoices += [
                    row
                    for row in invoices_for_subscription(seed=seed, subscription=ref, now=clock.now)
                    if row.period_start not in invoiced
                ]
            writer.write("core_invoice", invoices)
            after = batch[-1][0].id
    return SeedResult(seed, writer.counts, time.monotonic() - started)
