"""Clickstream: sessions of events minutes apart, shaped as a conversion funnel.

Every order gets one purchase session that ends in its `purchase` event at the order's own time.
Other sessions bounce, browse, or abandon a cart or a checkout, so each funnel step is rarer
than the one before: page_view > product_view > add_to_cart > checkout > purchase.
"""

import random

from core.generation.clock import HOUR, Timeline, to_datetime
from core.generation.customers import DEVICES, CustomerRef
from core.generation.orders import Purchase
from core.generation.pools import SEARCH_TERMS, pick
from core.generation.randomness import WeightedChoice, derive_rng, new_uuid, poisson
from core.generation.rows import EventRow
from core.generation.tenants import Catalog, Product

# Seconds between two events of a session: usually a minute or two, never over ten.
MEAN_GAP, MIN_GAP, MAX_GAP = 80.0, 4.0, 600.0
# Longest possible session: purchase sessions end at the order, which comes >= 3 h after signup.
SESSION_SPAN = 3 * HOUR
LANDING_PAGES = ("/", "/", "/deals", "/new-arrivals", "/bestsellers")
REFERRERS = WeightedChoice.from_mapping(
    {
        "": 0.3,
        "https://www.google.com/": 0.35,
        "https://www.bing.com/": 0.04,
        "https://www.facebook.com/": 0.1,
        "https://www.instagram.com/": 0.08,
        "https://mail.example.com/newsletter": 0.1,
        "https://partners.example.net/": 0.03,
    }
)
BROWSING_SESSIONS = WeightedChoice.from_mapping(
    {"bounce": 0.45, "browse": 0.25, "cart_abandoned": 0.15, "checkout_abandoned": 0.15}
)
EVENTS_PER_BROWSING_SESSION = 4.3  # the mean of the mix above, to size a customer's sessions


def category_page(product: Product) -> str:
    return f"/c/{product.category.lower()}"


def product_page(product: Product) -> str:
    return f"/p/{product.sku.lower()}"


class SessionWriter:
    """Builds one session's events, backwards from its end or forwards from its start."""

    def __init__(self, rng: random.Random, customer: CustomerRef, device: str):
        self.rng = rng
        self.customer = customer
        self.session_id = new_uuid(rng)
        self.device = device if rng.random() < 0.8 else DEVICES(rng)
        self.referrer = REFERRERS(rng)
        # (event_type, page_url, product, order_id, search_query, properties)
        self.steps: list[tuple] = []

    def add(self, event_type, page, product=None, order_id=None, query="", properties=None):
        self.steps.append((event_type, page, product, order_id, query, properties))

    def browse_products(self, products: list[Product], *, listing_rate: float) -> None:
        for product in products:
            if self.rng.random() < listing_rate:
                self.add("page_view", category_page(product))
            self.add("product_view", product_page(product), product)

    def search(self, product: Product) -> None:
        term = pick(self.rng, SEARCH_TERMS[product.category])
        self.add(
            "search",
            f"/search?q={term}",
            query=term,
            properties={"results": 1 + int(self.rng.expovariate(1 / 30))},
        )

    def gaps(self) -> list[float]:
        return [
            min(max(self.rng.expovariate(1 / MEAN_GAP), MIN_GAP), MAX_GAP)
            for _ in range(len(self.steps) - 1)
        ]

    def rows(
        self, *, ends_at: float | None = None, starts_at: float | None = None
    ) -> list[EventRow]:
        gaps = self.gaps()
        if ends_at is not None:  # built backwards, so that the last event is exactly at ends_at
            moments = [ends_at]
            for gap in reversed(gaps):
                moments.append(moments[-1] - gap)
            moments.reverse()
        else:
            moments = [starts_at]
            for gap in gaps:
                moments.append(moments[-1] + gap)
        rows = []
        for index, (event_type, page, product, order_id, query, properties) in enumerate(
            self.steps
        ):
            when = to_datetime(moments[index])
            # Positional: this runs once per event, the most numerous row by far.
            rows.append(
                EventRow(
                    new_uuid(self.rng),
                    when,
                    when,
                    self.customer.tenant_id,
                    self.customer.id,
                    self.session_id,
                    event_type,
                    product.id if product else None,
                    order_id,
                    page,
                    self.referrer if index == 0 else "",
                    self.device,
                    query,
                    properties,
                )
            )
        return rows


def purchase_session(
    rng: random.Random, customer: CustomerRef, device: str, purchase: Purchase, catalog: Catalog
) -> list[EventRow]:
    session = SessionWriter(rng, customer, device)
    bought = [
        catalog.by_id[product_id]
        for product_id in purchase.product_ids
        if product_id in catalog.by_id
    ]
    session.add("page_view", pick(rng, LANDING_PAGES))
    if bought and rng.random() < 0.2:
        session.search(bought[0])
    for product in bought:
        session.browse_products([product], listing_rate=1.0)
        session.add("add_to_cart", "/cart", product)
    session.add("checkout", "/checkout")
    session.add(
        "purchase",
        "/checkout/complete",
        order_id=purchase.order_id,
        properties={"order_number": purchase.order_number, "total": purchase.total},
    )
    return session.rows(ends_at=purchase.placed_at)


def browsing_session(
    rng: random.Random,
    customer: CustomerRef,
    device: str,
    catalog: Catalog,
    starts_at: float | None = None,
    ends_at: float | None = None,
) -> list[EventRow]:
    """A session that bounces, browses, or abandons a cart or a checkout; placed in time by its
    start (history) or by its end (the live simulator, which ends it now)."""
    session = SessionWriter(rng, customer, device)
    kind = BROWSING_SESSIONS(rng)
    session.add("page_view", pick(rng, LANDING_PAGES))
    if kind == "bounce":
        if rng.random() < 0.3:
            session.add("page_view", pick(rng, LANDING_PAGES))
        return session.rows(starts_at=starts_at, ends_at=ends_at)
    viewed = catalog.draw_distinct(rng, rng.randint(1, 3))
    if rng.random() < 0.35:
        session.search(viewed[0])
    session.browse_products(viewed, listing_rate=1.0)
    if kind == "browse":
        return session.rows(starts_at=starts_at, ends_at=ends_at)
    for product in viewed[: rng.randint(1, len(viewed))]:
        session.add("add_to_cart", "/cart", product)
    if kind == "checkout_abandoned":
        session.add("checkout", "/checkout")
    return session.rows(starts_at=starts_at, ends_at=ends_at)


def events_for_customer(
    *,
    seed: int,
    customer: CustomerRef,
    purchases: list[Purchase],
    catalog: Catalog,
    mean_events: float,
    expected_share: float,
    clock: Timeline,
    generation: int = 0,
) -> list[EventRow]:
    """A purchase session for each of `purchases`, and browsing sessions filling the customer's
    event budget (about `mean_events` for an average customer), and at least one for every
    four purchases. `generation` distinguishes a later run's sessions from earlier ones."""
    rng = derive_rng(seed, "events", customer.tenant_id, customer.number, generation)
    if not len(catalog):
        return []
    device = DEVICES(rng)
    rows: list[EventRow] = []
    for purchase in purchases:
        rows.extend(purchase_session(rng, customer, device, purchase, catalog))
    latest_start = clock.end - SESSION_SPAN
    if customer.signed_up >= latest_start:
        return rows
    activity = clock.share_between(customer.signed_up, clock.end) / expected_share
    budget = poisson(rng, mean_events * activity) - len(rows)
    sessions = max(round(budget / EVENTS_PER_BROWSING_SESSION), len(purchases) // 4 + 1)
    for _ in range(sessions):
        starts_at = clock.draw(rng, customer.signed_up, latest_start)
        rows.extend(browsing_session(rng, customer, device, catalog, starts_at))
    return rows
