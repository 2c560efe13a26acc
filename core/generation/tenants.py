"""Tenants and their catalogues."""

import math
import random
from collections.abc import Iterable
from dataclasses import dataclass
from uuid import UUID

from core.generation.clock import DAY, HOUR, Timeline, to_datetime
from core.generation.pools import INDUSTRIES, PRODUCT_WORDS, Pools, ascii_slug, pick
from core.generation.randomness import WeightedChoice, derive_rng, new_uuid
from core.generation.rows import ProductRow, TenantRow
from core.generation.rules import CURRENCY, money

# A tenant's catalogue is online within two days of the tenant opening; customers come after.
CATALOGUE_SETUP = 2 * DAY
TENANT_COUNTRIES = WeightedChoice.from_mapping(
    {"US": 0.6, "GB": 0.15, "DE": 0.1, "CA": 0.1, "FR": 0.05}
)

# Median price in dollars and spread (log-normal sigma) per category; clipped to $5-$2,000.
PRICE_SHAPE = {
    "Electronics": (160.0, 1.0),
    "Clothing": (45.0, 0.6),
    "Home": (55.0, 0.8),
    "Books": (18.0, 0.4),
    "Sports": (70.0, 0.8),
}
MIN_PRICE_CENTS, MAX_PRICE_CENTS = 500, 200_000


@dataclass(frozen=True)
class TenantRef:
    """What the generators need to know of a tenant."""

    id: UUID
    tier: str
    industry: str
    opened_at: float

    @property
    def customers_from(self) -> float:
        return self.opened_at + CATALOGUE_SETUP


@dataclass(frozen=True)
class Product:
    id: UUID
    sku: str
    category: str
    price_cents: int


def product_sku(category: str, number: int) -> str:
    """ELE-000042: the category, then the product's number in its tenant's catalogue."""
    return f"{category[:3].upper()}-{number:06d}"


def sku_number(sku: str) -> int:
    return int(sku.rsplit("-", 1)[1])


class Catalog:
    """A tenant's products, with a long-tailed popularity: a few best-sellers, many slow movers.

    Popularity follows the product's number in the catalogue (the first products a shop lists
    sell best), whatever order the products are given in, so a catalogue read back from the
    database ranks its products exactly as the one the seeder generated.
    """

    def __init__(self, products: list[Product]):
        products = sorted(products, key=lambda product: sku_number(product.sku))
        self.products = products
        self.by_id = {product.id: product for product in products}
        self.by_category: dict[str, list[Product]] = {}
        for product in products:
            self.by_category.setdefault(product.category, []).append(product)
        self.popular = (
            WeightedChoice(products, [1 / (rank + 1) ** 0.9 for rank in range(len(products))])
            if products
            else None
        )

    def __len__(self) -> int:
        return len(self.products)

    def draw_distinct(self, rng: random.Random, count: int) -> list[Product]:
        count = min(count, len(self.products))
        chosen: dict[UUID, Product] = {}
        while len(chosen) < count:
            product = self.popular(rng)
            chosen.setdefault(product.id, product)
        return list(chosen.values())


def tenant_rows(
    *,
    seed: int,
    tiers: list[str],
    clock: Timeline,
    pools: Pools,
    taken_names: Iterable[str] = (),
    first_index: int = 0,
) -> list[TenantRow]:
    """One tenant per tier, opened in the first hours of the history window."""
    taken = set(taken_names)
    rows = []
    for offset, tier in enumerate(tiers):
        index = first_index + offset
        rng = derive_rng(seed, "tenant", index)
        name = pick(rng, pools.company_names)
        while name in taken:
            name = f"{pick(rng, pools.company_names)} {rng.randint(2, 99)}"
        taken.add(name)
        opened = to_datetime(clock.start + rng.random() * 6 * HOUR)
        rows.append(
            TenantRow(
                id=new_uuid(rng),
                created_at=opened,
                updated_at=opened,
                name=name[:120],
                slug=f"{ascii_slug(name)[:50]}-{index}",
                tier=tier,
                industry=pick(rng, tuple(INDUSTRIES)),
                country=TENANT_COUNTRIES(rng),
                currency=CURRENCY,
                is_active=True,
            )
        )
    return rows


def shop_price_cents(dollars: float) -> int:
    """Shop prices end in .99 and stay inside the $5-$2,000 range."""
    cents = round(dollars) * 100 - 1
    return min(max(cents, MIN_PRICE_CENTS), MAX_PRICE_CENTS - 1)


def repriced_cents(rng: random.Random, cents: int) -> int:
    """A price change: up or down by at most a tenth, still a shop price."""
    return shop_price_cents(cents / 100 * rng.uniform(0.9, 1.1))


def product_price_cents(rng: random.Random, category: str) -> int:
    median, sigma = PRICE_SHAPE[category]
    return shop_price_cents(median * math.exp(rng.gauss(0, sigma)))


def product_rows(*, seed: int, tenant: TenantRef, numbers: range, pools: Pools) -> list[ProductRow]:
    """Products numbered `numbers` (SKU sequence per tenant), created while the shop sets up."""
    categories = WeightedChoice.from_mapping(INDUSTRIES[tenant.industry])
    rows = []
    for number in numbers:
        rng = derive_rng(seed, "product", tenant.id, number)
        category = categories(rng)
        adjectives, nouns = PRODUCT_WORDS[category]
        brand = pick(rng, pools.brands)
        price = product_price_cents(rng, category)
        created = to_datetime(tenant.opened_at + rng.random() * CATALOGUE_SETUP)
        rows.append(
            ProductRow(
                id=new_uuid(rng),
                created_at=created,
                updated_at=created,
                tenant_id=tenant.id,
                sku=product_sku(category, number),
                name=f"{brand} {pick(rng, adjectives)} {pick(rng, nouns)}",
                category=category,
                brand=brand,
                price=money(price),
                cost=money(round(price * rng.uniform(0.35, 0.7))),
                stock_quantity=0 if rng.random() < 0.05 else int(rng.expovariate(1 / 120)),
                is_active=rng.random() > 0.03,
            )
        )
    return rows


def catalog_of(rows: Iterable[ProductRow]) -> Catalog:
    return Catalog(
        [
            Product(row.id, row.sku, row.category, int(row.price * 100))
            for row in rows
            if row.is_active
        ]
    )
