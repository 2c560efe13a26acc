"""How big each kind of tenant is, and what each scale means."""

from dataclasses import dataclass

ENTERPRISE = "enterprise"
MID_MARKET = "mid_market"
SMALL_BUSINESS = "small_business"


@dataclass(frozen=True)
class TierProfile:
    """Per-tenant volumes of a tier at the `large` scale."""

    customers: tuple[int, int]
    products: tuple[int, int]
    orders_per_customer: float
    events_per_customer: float
    subscription_rate: float


TIERS: dict[str, TierProfile] = {
    ENTERPRISE: TierProfile((1000, 2000), (150, 200), 7.0, 70.0, 0.35),
    MID_MARKET: TierProfile((500, 1000), (100, 150), 5.0, 55.0, 0.30),
    SMALL_BUSINESS: TierProfile((100, 300), (50, 80), 3.5, 35.0, 0.25),
}

# Customers per tenant relative to `large`; every per-customer ratio and the catalogues stay.
SCALES: dict[str, float] = {"small": 0.05, "medium": 0.3, "large": 1.0}


def scale_factor(scale: str) -> float:
    """`small`, `medium`, `large`, or a positive number meaning that many times `large`."""
    if scale in SCALES:
        return SCALES[scale]
    try:
        factor = float(scale)
    except ValueError:
        raise ValueError(
            f"unknown scale {scale!r}: use small, medium, large, or a positive multiple of large"
        ) from None
    if not factor > 0 or factor != factor or factor == float("inf"):
        raise ValueError(f"scale must be a positive number of times large, not {scale!r}")
    return factor


def tier_mix(count: int, small_businesses: int | None = None) -> list[str]:
    """Tiers for `count` tenants: 2 enterprise, 3 mid-market, the rest small business."""
    tiers = [ENTERPRISE] * min(2, count) + [MID_MARKET] * min(3, max(count - 2, 0))
    return tiers + [SMALL_BUSINESS] * (count - len(tiers))
