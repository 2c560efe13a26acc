"""Customers: who they are, where they live, when and how they signed up."""

from dataclasses import dataclass
from datetime import timedelta
from uuid import UUID

from core.generation.clock import HOUR, Timeline, to_datetime
from core.generation.pools import EMAIL_DOMAINS, Pools, ascii_slug, pick
from core.generation.profiles import ENTERPRISE
from core.generation.randomness import WeightedChoice, derive_rng, new_uuid
from core.generation.rows import CustomerRow
from core.generation.tenants import TenantRef

SIGNUP_CHANNELS = WeightedChoice.from_mapping(
    {
        "organic": 0.32,
        "paid_search": 0.22,
        "social": 0.18,
        "referral": 0.1,
        "email": 0.1,
        "affiliate": 0.08,
    }
)
SEGMENTS = WeightedChoice.from_mapping(
    {"budget": 0.3, "mainstream": 0.45, "premium": 0.18, "business": 0.07}
)
ENTERPRISE_SEGMENTS = WeightedChoice.from_mapping(
    {"budget": 0.2, "mainstream": 0.4, "premium": 0.22, "business": 0.18}
)
DEVICES = WeightedChoice.from_mapping({"desktop": 0.45, "mobile": 0.45, "tablet": 0.1})


@dataclass(frozen=True)
class CustomerRef:
    """What orders, events and subscriptions need to know of a customer."""

    id: UUID
    tenant_id: UUID
    number: int
    signed_up: float
    city: str
    country: str


def phone_number(rng) -> str:
    return f"+{rng.randint(1, 49)} {rng.randint(200, 999)} {rng.randint(1_000_000, 9_999_999)}"


def customer_rows(
    *, seed: int, tenant: TenantRef, numbers: range, clock: Timeline, pools: Pools
) -> list[CustomerRow]:
    """Customers numbered `numbers` within the tenant, signed up over the window (more lately)."""
    segments = ENTERPRISE_SEGMENTS if tenant.tier == ENTERPRISE else SEGMENTS
    earliest = min(tenant.customers_from, clock.end - HOUR)
    rows = []
    for number in numbers:
        rng = derive_rng(seed, "customer", tenant.id, number)
        locale = pools.locales(rng)
        first, last = pick(rng, locale.first_names), pick(rng, locale.last_names)
        place = pick(rng, locale.places)
        signed_up = clock.draw(rng, earliest, clock.end - HOUR)
        # A third of customers edited their profile since.
        edited = signed_up + rng.random() * (clock.end - signed_up) if rng.random() < 0.33 else None
        age_years = min(max(rng.gauss(38, 13), 18), 85)
        birth = clock.now.date() - timedelta(days=int(age_years * 365.25))
        rows.append(
            CustomerRow(
                id=new_uuid(rng),
                created_at=to_datetime(signed_up),
                updated_at=to_datetime(edited or signed_up),
                tenant_id=tenant.id,
                customer_number=number,
                email=f"{ascii_slug(first)}.{ascii_slug(last)}{number}@{EMAIL_DOMAINS(rng)}",
                first_name=first,
                last_name=last,
                phone=phone_number(rng),
                birth_date=birth if rng.random() < 0.7 else None,
                city=place.city,
                region=place.region,
                country=place.country,
                postal_code=place.postal_code,
                signup_channel=SIGNUP_CHANNELS(rng),
                segment=segments(rng),
                marketing_opt_in=rng.random() < 0.55,
                is_active=rng.random() > 0.03,
            )
        )
    return rows


def customer_ref(row: CustomerRow) -> CustomerRef:
    return CustomerRef(
        id=row.id,
        tenant_id=row.tenant_id,
        number=row.customer_number,
        signed_up=row.created_at.timestamp(),
        city=row.city,
        country=row.country,
    )
