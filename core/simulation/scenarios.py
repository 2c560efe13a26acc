"""Named stress scenarios: the change patterns DMS → S3 → lakehouse pipelines get wrong, made on
purpose as real PostgreSQL transactions on the seeded shop.

Each scenario is deterministic for a seed and the data it starts from: the keys it touches are
chosen in key order with draws from Random(seed, name), and the keys it makes are drawn from
the same generator. Updates that do not set `updated_at` get the transaction's start time from
the trigger (migration 0002), so the changes of one transaction share it, as they share their
commit timestamp: only the change sequence orders them.
"""

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

import psycopg2
import psycopg2.extras
from django.db import connection, transaction

from core.errors import ScenarioError

MONEY_MAX = Decimal("9999999999.99")  # numeric(12, 2)
ADDED_COLUMN = "loyalty_tier"  # the column the schema-change scenario adds to core_customer


@dataclass(frozen=True)
class Scenario:
    name: str
    pitfall: str  # what it tests
    naive: str  # what a naive pipeline gets wrong
    run: Callable[["Shop"], int]  # returns the rows it changed


class Shop:
    """The seeded shop a scenario works on: one tenant (the largest, or the smallest for
    offboarding), a random generator, and SQL."""

    def __init__(self, seed: int, name: str, size: float):
        self.rng = random.Random(f"{seed}:{name}")
        self.size = size
        self.cursor = connection.cursor()

    def one(self, sql: str, params=()):
        self.cursor.execute(sql, params)
        return self.cursor.fetchone()

    def all(self, sql: str, params=()) -> list[tuple]:
        self.cursor.execute(sql, params)
        return self.cursor.fetchall()

    def run(self, sql: str, params=()) -> int:
        self.cursor.execute(sql, params)
        return max(self.cursor.rowcount, 0)

    def scaled(self, count: int) -> int:
        return max(1, round(count * self.size))

    def key(self) -> UUID:
        return UUID(int=self.rng.getrandbits(128), version=4)

    def tenant(self, smallest: bool = False) -> UUID:
        found = self.one(
            "SELECT t.id FROM core_tenant t LEFT JOIN core_customer c ON c.tenant_id = t.id "
            f"GROUP BY t.id ORDER BY count(c.id) {'ASC' if smallest else 'DESC'}, t.id LIMIT 1"
        )
        if found is None:
            raise ScenarioError("the shop has no tenants: seed it first (bin/manage seed_all)")
        return found[0]

    def pick(self, table: str, tenant: UUID, count: int = 1) -> list[UUID]:
        """`count` keys of the tenant's rows (all of them if it has fewer)."""
        rows = self.all(f"SELECT id FROM {table} WHERE tenant_id = %s ORDER BY id", [tenant])
        if not rows:
            raise ScenarioError(f"the shop has no rows in {table}: seed it (bin/manage seed_all)")
        return [row[0] for row in self.rng.sample(rows, min(count, len(rows)))]

    def new_product(
        self,
        tenant: UUID,
        price: Decimal = Decimal("19.99"),
        *,
        key: UUID | None = None,
        name: str | None = None,
        category: str = "Home",
        stock: int = 10,
    ) -> UUID:
        """Insert a product (a new key unless `key` is given, to insert one again)."""
        key = key or self.key()
        self.run(
            "INSERT INTO core_product (id, created_at, updated_at, tenant_id, sku, name, "
            "category, brand, price, cost, stock_quantity, is_active) VALUES "
            "(%s, now(), now(), %s, %s, %s, %s, 'Scenario', %s, %s, %s, true)",
            [key, tenant, f"SCN-{key.hex[:12]}", name or f"Scenario product {key.hex[:6]}",
             category, price, price / 2, stock],
        )  # fmt: skip
        return key


def one_key_lifecycle(shop: Shop) -> int:
    tenant = shop.tenant()
    changed = 0
    with transaction.atomic():
        gone = shop.new_product(tenant)
        kept = shop.new_product(tenant)
        for key in (gone, kept):
            changed += 1 + shop.run("UPDATE core_product SET price = 24.99 WHERE id = %s", [key])
            changed += shop.run("UPDATE core_product SET stock_quantity = 7 WHERE id = %s", [key])
        changed += shop.run("DELETE FROM core_product WHERE id = %s", [gone])
    return changed


def hot_key(shop: Shop) -> int:
    tenant = shop.tenant()
    (product,) = shop.pick("core_product", tenant)
    changed = 0
    for step in range(shop.scaled(50)):
        with transaction.atomic():
            changed += shop.run(
                "UPDATE core_product SET stock_quantity = %s WHERE id = %s", [1000 + step, product]
            )
    return changed


def concurrent_commits(shop: Shop) -> int:
    """T1 starts first and T2 second; T2 changes the keys and commits; then T1 changes the same
    keys and commits. T1's rows are the last, but their updated_at (its start) is older."""
    tenant = shop.tenant()
    keys = shop.pick("core_customer", tenant, shop.scaled(10))
    params = connection.get_connection_params()
    first, second = psycopg2.connect(**params), psycopg2.connect(**params)
    try:
        with first.cursor() as early, second.cursor() as late:
            early.execute("SELECT now()")  # T1 has started
            late.execute("SELECT pg_sleep(0.01)")  # T2 starts later
            late.execute(
                "UPDATE core_customer SET segment = 'vip' WHERE id = ANY(%s::uuid[])",
                [[str(key) for key in keys]],
            )
            second.commit()
            early.execute(
                "UPDATE core_customer SET segment = 'at_risk' WHERE id = ANY(%s::uuid[])",
                [[str(key) for key in keys]],
            )
            first.commit()
    finally:
        first.close()
        second.close()
    return 2 * len(keys)


def delete_reinsert(shop: Shop) -> int:
    tenant = shop.tenant()
    apart, together = shop.new_product(tenant), shop.new_product(tenant)
    changed = 2
    with transaction.atomic():
        changed += shop.run("DELETE FROM core_product WHERE id = %s", [apart])
    with transaction.atomic():
        changed += reinsert(shop, apart, tenant, Decimal("31.00"))
    with transaction.atomic():
        changed += shop.run("DELETE FROM core_product WHERE id = %s", [together])
        changed += reinsert(shop, together, tenant, Decimal("32.00"))
    return changed


def reinsert(shop: Shop, key: UUID, tenant: UUID, price: Decimal) -> int:
    shop.new_product(tenant, price, key=key, name="Reinserted product", category="Books", stock=3)
    return 1


def big_transaction(shop: Shop) -> int:
    """One transaction of 100,000 row changes: 50,000 events inserted, then each updated."""
    tenant = shop.tenant()
    (customer,) = shop.pick("core_customer", tenant)
    count = shop.scaled(50_000)
    with transaction.atomic():
        inserted = shop.run(
            "INSERT INTO core_event (id, created_at, updated_at, tenant_id, customer_id, "
            "session_id, event_type, page_url, referrer, device, search_query) "
            "SELECT md5(%s || n)::uuid, now(), now(), %s, %s, md5(%s || n / 20)::uuid, "
            "'page_view', '/scenario/' || n, '', 'desktop', '' FROM generate_series(1, %s) n",
            [f"{shop.rng.random()}:", tenant, customer, f"{shop.rng.random()}:", count],
        )
        updated = shop.run(
            "UPDATE core_event SET device = 'mobile' WHERE tenant_id = %s AND customer_id = %s "
            "AND page_url LIKE '/scenario/%%' AND device = 'desktop'",
            [tenant, customer],
        )
    return inserted + updated


def burst(shop: Shop) -> int:
    """10,000 one-row transactions, on 100 keys."""
    tenant = shop.tenant()
    keys = shop.pick("core_customer", tenant, min(100, shop.scaled(100)))
    changed = 0
    for step in range(shop.scaled(10_000)):
        with transaction.atomic():
            changed += shop.run(
                "UPDATE core_customer SET marketing_opt_in = NOT marketing_opt_in WHERE id = %s",
                [keys[step % len(keys)]],
            )
    return changed


def toast(shop: Shop) -> int:
    """A value beyond 32 KB (LobMaxSize's default) in a LOB column, then UPDATEs of other
    columns of that row, which leave the stored (TOASTed) value unchanged."""
    tenant = shop.tenant()
    events = shop.pick("core_event", tenant, 3)
    large = {"note": "".join(shop.rng.choice("abcdefghij") for _ in range(shop.scaled(40_000)))}
    changed = 0
    with transaction.atomic():
        for key in events:
            changed += shop.run(
                "UPDATE core_event SET properties = %s WHERE id = %s",
                [psycopg2.extras.Json(large), key],
            )
    for device in ("tablet", "mobile"):
        with transaction.atomic():
            for key in events:
                changed += shop.run(
                    "UPDATE core_event SET device = %s WHERE id = %s", [device, key]
                )
    return changed


def schema_change(shop: Shop) -> int:
    """ALTER TABLE … ADD COLUMN as a Django migration writes it (nullable, no default), then a
    backfill in batches, then ordinary writes that fill it."""
    exists = shop.one(
        "SELECT 1 FROM information_schema.columns WHERE table_name = 'core_customer' "
        "AND column_name = %s",
        [ADDED_COLUMN],
    )
    if exists:
        raise ScenarioError(
            f"core_customer.{ADDED_COLUMN} exists already (from an earlier run): drop it with "
            f"ALTER TABLE core_customer DROP COLUMN {ADDED_COLUMN}"
        )
    with transaction.atomic():
        shop.run(f'ALTER TABLE core_customer ADD COLUMN "{ADDED_COLUMN}" varchar(20) NULL')
    tenant = shop.tenant()
    customers = shop.all("SELECT id FROM core_customer WHERE tenant_id = %s ORDER BY id", [tenant])
    keys = [key for (key,) in customers[: shop.scaled(400)]]
    changed = 0
    for start in range(0, len(keys), 100):
        with transaction.atomic():
            changed += shop.run(
                f"UPDATE core_customer SET {ADDED_COLUMN} = CASE segment WHEN 'vip' THEN 'gold' "
                "ELSE 'bronze' END WHERE id = ANY(%s::uuid[])",
                [[str(key) for key in keys[start : start + 100]]],
            )
    return changed


def tenant_offboarding(shop: Shop) -> int:
    """Every row of the smallest tenant deleted, children first, in one transaction."""
    tenant = shop.tenant(smallest=True)
    changed = 0
    with transaction.atomic():
        for table in (
            "core_invoice", "core_subscription", "core_event", "core_orderitem", "core_order",
            "core_product", "core_customer",
        ):  # fmt: skip
            changed += shop.run(f"DELETE FROM {table} WHERE tenant_id = %s", [tenant])
        changed += shop.run("DELETE FROM core_tenant WHERE id = %s", [tenant])
    return changed


# Moments around daylight-saving changes (Europe: last Sunday of March and October at 01:00
# UTC; United States: second Sunday of March and first of November at 07:00/06:00 UTC).
DST_EDGES = [
    datetime(2026, 3, 29, 0, 59, 59, 999_999, tzinfo=UTC),
    datetime(2026, 3, 29, 1, 0, 0, 0, tzinfo=UTC),
    datetime(2026, 10, 25, 0, 59, 59, 999_999, tzinfo=UTC),
    datetime(2026, 10, 25, 1, 0, 0, 1, tzinfo=UTC),
    datetime(2026, 3, 8, 10, 0, 0, 0, tzinfo=UTC),
    datetime(2026, 11, 1, 6, 0, 0, 500, tzinfo=UTC),
]


def edges(shop: Shop) -> int:
    """Timestamps on daylight-saving edges, two updates a few microseconds apart (one
    millisecond in Parquet), and the largest money values numeric(12, 2) holds."""
    tenant = shop.tenant()
    *customers, twice = shop.pick("core_customer", tenant, len(DST_EDGES) + 1)
    changed = 0
    with transaction.atomic():
        for key, moment in zip(customers, DST_EDGES, strict=False):
            changed += shop.run(
                "UPDATE core_customer SET created_at = %s, updated_at = %s WHERE id = %s",
                [moment, moment, key],
            )
    rich = shop.new_product(tenant, price=MONEY_MAX)
    changed += 1
    base = datetime(2026, 10, 25, 0, 59, 59, 999_000, tzinfo=UTC)
    for micro, city in ((100, "Lisbon"), (900, "Porto")):
        with transaction.atomic():
            changed += shop.run(
                "UPDATE core_customer SET city = %s, created_at = least(created_at, %s), "
                "updated_at = %s WHERE id = %s",
                [city, base, base.replace(microsecond=999_000 + micro), twice],
            )
    with transaction.atomic():
        changed += shop.run(
            "UPDATE core_product SET cost = %s, stock_quantity = 2147483647 WHERE id = %s",
            [MONEY_MAX, rich],
        )
    return changed


SCENARIOS = {
    scenario.name: scenario
    for scenario in [
        Scenario(
            "one-key-lifecycle",
            "insert, update, update, delete of one key in one transaction",
            "all four changes share one commit timestamp: ordering by timestamp picks any of "
            "them (the deleted product comes back); without a dedupe the MERGE fails "
            "(MERGE_TARGET_ROW_MULTIPLE_MATCHES)",
            one_key_lifecycle,
        ),
        Scenario(
            "hot-key",
            "one key changed in 50 transactions that land in one CDC batch",
            "several rows for one key in one batch: a MERGE without a dedupe fails",
            hot_key,
        ),
        Scenario(
            "concurrent-commits",
            "two transactions whose commit order differs from their start order, on the same keys",
            "the last commit carries the older updated_at: ordering by the row's timestamp "
            "keeps the value that was overwritten",
            concurrent_commits,
        ),
        Scenario(
            "delete-reinsert",
            "a key deleted and inserted again, in two transactions and in one",
            "in one transaction the delete and the insert tie on timestamp: the key is lost "
            "or the MERGE fails",
            delete_reinsert,
        ),
        Scenario(
            "big-transaction",
            "one transaction of 100,000 row changes (50,000 inserts, each then updated)",
            "every key has two changes with the same timestamp: the insert may win, and the "
            "MERGE without a dedupe fails",
            big_transaction,
        ),
        Scenario(
            "burst",
            "10,000 one-row transactions on 100 keys",
            "each key changes about 100 times per batch: a MERGE without a dedupe fails",
            burst,
        ),
        Scenario(
            "toast",
            "a LOB value beyond 32 KB (LobMaxSize's default), then UPDATEs that leave it unchanged",
            "with REPLICA IDENTITY DEFAULT the UPDATE carries no value for the unchanged LOB "
            "(DMS writes NULL): applying every column blanks it; beyond LobMaxSize limited LOB "
            "mode truncates it or fails the task",
            toast,
        ),
        Scenario(
            "schema-change",
            f"ALTER TABLE core_customer ADD COLUMN {ADDED_COLUMN} mid-stream, then a backfill",
            "DMS (capture_ddls off) writes the new column into later files only: a job with a "
            "fixed schema drops it, one that reads by position shifts the columns",
            schema_change,
        ),
        Scenario(
            "tenant-offboarding",
            "every row of one tenant deleted, children first, in one transaction",
            "deletes carry only the key (tenant_id is NULL): a MERGE that also matches on "
            "tenant_id, the partition column, never deletes them",
            tenant_offboarding,
        ),
        Scenario(
            "edges",
            "daylight-saving edges, updates microseconds apart, the largest money values",
            "Parquet keeps milliseconds: the two updates tie on updated_at and ordering by it "
            "picks either; money read as float or a narrower decimal loses cents",
            edges,
        ),
    ]
}


def run_scenario(name: str, *, seed: int, size: float = 1.0) -> int:
    """Run one scenario; the rows it changed."""
    if name not in SCENARIOS:
        raise ScenarioError(
            f"no scenario {name!r}: choose from {', '.join(SCENARIOS)} (--scenario list)"
        )
    return SCENARIOS[name].run(Shop(seed, name, size))
