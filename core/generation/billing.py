"""Subscriptions and their monthly invoices, with lifecycles whose dates agree."""

import random
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

from core.generation.clock import DAY, Timeline, to_datetime
from core.generation.customers import CustomerRef
from core.generation.profiles import ENTERPRISE, MID_MARKET
from core.generation.randomness import WeightedChoice, derive_rng, new_uuid
from core.generation.rows import InvoiceRow, SubscriptionRow
from core.generation.rules import (
    CURRENCY,
    TRIAL_LENGTH,
    add_months,
    invoice_due_date,
    invoice_number,
    plan_amount,
)

PLANS = {
    ENTERPRISE: WeightedChoice.from_mapping(
        {"basic": 0.25, "pro": 0.33, "premium": 0.25, "enterprise": 0.17}
    ),
    MID_MARKET: WeightedChoice.from_mapping(
        {"basic": 0.38, "pro": 0.35, "premium": 0.2, "enterprise": 0.07}
    ),
}
SMALL_BUSINESS_PLANS = WeightedChoice.from_mapping(
    {"basic": 0.5, "pro": 0.33, "premium": 0.14, "enterprise": 0.03}
)
PLAN_ORDER = ("basic", "pro", "premium", "enterprise")
TRIAL_RATE = 0.6
TRIAL_CONVERSION = 0.75
# Of the trials that do not convert, the share the customer cancels (the rest lapse).
TRIAL_CANCELLED = 0.5
# At each monthly renewal: the customer cancels during the next month, or the payment fails.
MONTHLY_CANCELLATION = 0.035
MONTHLY_PAYMENT_FAILURE = 0.008
# At a renewal that goes ahead, the customer moves one plan up (mostly) or down.
MONTHLY_PLAN_CHANGE = 0.02
PLAN_UPGRADE_SHARE = 0.6
# An invoice raised less than a day ago is still a draft half of the time.
DRAFT_SHARE = 0.5
# Who pays, and how long after the invoice they take, in days: most within terms, some late,
# a few never.
ON_TIME_SHARE, LATE_SHARE = 0.93, 0.05
ON_TIME_DAYS, LATE_DAYS = (0, 10), (10, 60)
# An invoice of a month the customer cancelled within this many days of is voided.
VOID_WITHIN_DAYS = 7


def plan_for_tier(rng: random.Random, tier: str) -> str:
    """Bigger tenants sell bigger plans."""
    return PLANS.get(tier, SMALL_BUSINESS_PLANS)(rng)


def changed_plan(rng: random.Random, plan: str) -> str:
    """One plan up (more often) or down, staying within the range."""
    step = 1 if rng.random() < PLAN_UPGRADE_SHARE else -1
    index = min(max(PLAN_ORDER.index(plan) + step, 0), len(PLAN_ORDER) - 1)
    return PLAN_ORDER[index]


def trial_outcome(rng: random.Random) -> str:
    """How a trial ends: `converted`, `cancelled` (by the customer) or `expired`."""
    if rng.random() < TRIAL_CONVERSION:
        return "converted"
    return "cancelled" if rng.random() < TRIAL_CANCELLED else "expired"


def renewal_outcome(rng: random.Random) -> str:
    """What happens when a paid month ends: `renew`, `cancel` (the customer cancels during the
    next month) or `lapse` (the payment fails and the subscription expires)."""
    draw = rng.random()
    if draw < MONTHLY_CANCELLATION:
        return "cancel"
    if draw < MONTHLY_CANCELLATION + MONTHLY_PAYMENT_FAILURE:
        return "lapse"
    return "renew"


def billing_period(anchor: datetime, month: int) -> tuple[datetime, datetime]:
    """The `month`-th billing period, counted from the anchor (the first billed moment: the end
    of the trial, or the start). Anchored, not chained: a subscription that started on Jan 31
    is billed from Feb 28, Mar 31, Apr 30, …, never drifting to the 28th."""
    return add_months(anchor, month), add_months(anchor, month + 1)


def billing_month(anchor: datetime, moment: datetime) -> int:
    """The billing period that holds `moment` (0 for the first; -1 before the anchor)."""
    if moment < anchor:
        return -1
    month = (moment.year - anchor.year) * 12 + moment.month - anchor.month
    while month > 0 and add_months(anchor, month) > moment:
        month -= 1
    while add_months(anchor, month + 1) <= moment:
        month += 1
    return month


@dataclass(frozen=True)
class SubscriptionRef:
    """What billing needs to know of a subscription."""

    id: UUID
    tenant_id: UUID
    customer_id: UUID
    customer_number: int
    ordinal: int  # the customer's n-th subscription
    monthly_amount: Decimal
    billing_starts: datetime | None  # None: never billed (a trial that lapsed or still runs)
    ended_at: datetime | None
    cancelled: bool


def subscribes(seed: int, tenant_id: UUID, customer_number: int, rate: float) -> bool:
    """Whether a customer takes a subscription: `rate` of them (the tier's share)."""
    return derive_rng(seed, "subscribes", tenant_id, customer_number).random() < rate


def subscription_start(
    rng: random.Random, tier: str, started: datetime
) -> tuple[str, datetime | None]:
    """A new subscription's plan, and the end of its trial if it starts with one."""
    plan = plan_for_tier(rng, tier)
    trial_ends = started + TRIAL_LENGTH if rng.random() < TRIAL_RATE else None
    return plan, trial_ends


def subscription_for_customer(
    *, seed: int, customer: CustomerRef, tier: str, clock: Timeline, ordinal: int = 1
) -> tuple[SubscriptionRow, SubscriptionRef]:
    """A subscription started after signup, with an optional trial, then month by month a small
    chance to be cancelled or to lapse on a failed payment."""
    rng = derive_rng(seed, "subscription", customer.tenant_id, customer.number, ordinal)
    started_at = clock.draw(rng, customer.signed_up, clock.end)
    started = to_datetime(started_at)
    plan, trial_ends = subscription_start(rng, tier, started)
    now = clock.now
    status, cancelled_at, ended_at = "active", None, None
    period_start = period_end = None
    billing_starts = trial_ends or started
    changed = started
    outcome = trial_outcome(rng) if trial_ends is not None and trial_ends <= now else None
    if trial_ends is not None and trial_ends > now:
        status, period_start, period_end, billing_starts = "trial", started, trial_ends, None
    elif outcome in ("cancelled", "expired"):
        billing_starts, period_start, period_end = None, started, trial_ends
        if outcome == "cancelled":
            cancelled_at = to_datetime(started_at + rng.random() * TRIAL_LENGTH.total_seconds())
            status, ended_at = "cancelled", cancelled_at
        else:
            status, ended_at = "expired", trial_ends
        changed = ended_at
    else:
        if trial_ends is not None:
            changed = trial_ends
        month = 0
        while True:
            period_start, period_end = billing_period(billing_starts, month)
            if period_end > now:
                break  # the current period
            month += 1
            renewal = renewal_outcome(rng)
            if renewal == "cancel":
                period_start, period_end = billing_period(billing_starts, month)
                span = min(period_end, now).timestamp() - period_start.timestamp()
                cancelled_at = to_datetime(period_start.timestamp() + rng.random() * span)
                status, ended_at = "cancelled", cancelled_at
                break
            if renewal == "lapse":
                status, ended_at = "expired", period_end
                break
        changed = max(changed, period_start, ended_at or period_start)
    amount = plan_amount(plan)
    row = SubscriptionRow(
        id=new_uuid(rng),
        created_at=started,
        updated_at=min(changed, now),
        tenant_id=customer.tenant_id,
        customer_id=customer.id,
        plan=plan,
        monthly_amount=amount,
        currency=CURRENCY,
        status=status,
        started_at=started,
        trial_ends_at=trial_ends,
        current_period_start=period_start,
        current_period_end=period_end,
        cancelled_at=cancelled_at,
        ended_at=ended_at,
    )
    ref = SubscriptionRef(
        id=row.id,
        tenant_id=row.tenant_id,
        customer_id=row.customer_id,
        customer_number=customer.number,
        ordinal=ordinal,
        monthly_amount=amount,
        billing_starts=billing_starts,
        ended_at=ended_at,
        cancelled=status == "cancelled",
    )
    return row, ref


def invoice_status(
    rng: random.Random, issued: datetime, now: datetime, voided: bool
) -> tuple[str, datetime | None, datetime | None]:
    """(status, issued_at, paid_at) of an invoice raised at `issued`, as of `now`.

    The same draws are made whatever `now` is, so an invoice's story is fixed when it is raised
    and `now` only says how far it has got: the live simulator asks again later and moves the
    invoice on (draft -> sent -> paid, or overdue -> paid) exactly as its story says.
    """
    draft_draw, payer_draw, delay_draw = rng.random(), rng.random(), rng.random()
    if voided:
        return "cancelled", issued, None
    if (now - issued).total_seconds() < DAY and draft_draw < DRAFT_SHARE:
        return "draft", None, None
    if payer_draw < ON_TIME_SHARE:
        low, high = ON_TIME_DAYS
    elif payer_draw < ON_TIME_SHARE + LATE_SHARE:
        low, high = LATE_DAYS
    else:
        low = high = None  # never pays
    if low is not None:
        paid = issued.timestamp() + (low + (high - low) * delay_draw) * DAY
        if paid <= now.timestamp():
            return "paid", issued, to_datetime(paid)
    if invoice_due_date(issued) < now.date():
        return "overdue", issued, None
    return "sent", issued, None


def invoice_rng(seed: int, subscription_id: UUID, period_start: date) -> random.Random:
    return derive_rng(seed, "invoice", subscription_id, period_start.isoformat())


def invoice_row(
    *,
    seed: int,
    subscription: SubscriptionRef,
    month: int,
    now: datetime,
    raised_at: datetime | None = None,
) -> InvoiceRow:
    """The invoice of the subscription's `month`-th billing period, as of `now`: raised when
    the period begins (or at `raised_at`, when that is later), at the plan's amount. The invoice
    of the month in which a customer cancelled is voided if they cancelled within a week of it
    starting."""
    period_start, period_end = billing_period(subscription.billing_starts, month)
    raised = max(period_start, raised_at or period_start)
    rng = invoice_rng(seed, subscription.id, period_start.date())
    invoice_id = new_uuid(rng)
    ended = subscription.ended_at
    voided = (
        subscription.cancelled
        and ended is not None
        and ended < period_end
        and (ended - period_start).days < VOID_WITHIN_DAYS
    )
    status, issued_at, paid_at = invoice_status(rng, raised, now, voided)
    return InvoiceRow(
        id=invoice_id,
        created_at=raised,
        updated_at=paid_at or raised,
        tenant_id=subscription.tenant_id,
        subscription_id=subscription.id,
        customer_id=subscription.customer_id,
        invoice_number=invoice_number(
            period_start.date(), subscription.customer_number, subscription.ordinal
        ),
        period_start=period_start.date(),
        period_end=period_end.date(),
        amount=subscription.monthly_amount,
        currency=CURRENCY,
        status=status,
        issued_at=issued_at,
        due_date=invoice_due_date(raised),
        paid_at=paid_at,
    )


def invoice_status_now(
    *, seed: int, subscription_id: UUID, period_start: date, raised: datetime, now: datetime
) -> tuple[str, datetime | None, datetime | None]:
    """Where the story of a stored invoice has got by `now` (see `invoice_status`)."""
    rng = invoice_rng(seed, subscription_id, period_start)
    new_uuid(rng)  # the invoice's id: drawn first, as in `invoice_row`
    return invoice_status(rng, raised, now, voided=False)


def invoices_for_subscription(
    *, seed: int, subscription: SubscriptionRef, now: datetime, skip_periods: int = 0
) -> list[InvoiceRow]:
    """One invoice per billing month that began while the subscription was billable, from the
    `skip_periods`-th on (those before were raised already)."""
    if subscription.billing_starts is None:
        return []
    rows = []
    month = skip_periods
    while True:
        period_start, _ = billing_period(subscription.billing_starts, month)
        if period_start > now:
            break
        ended = subscription.ended_at
        if ended is not None and period_start >= ended:
            break
        rows.append(invoice_row(seed=seed, subscription=subscription, month=month, now=now))
        month += 1
    return rows


def new_subscription(
    *, rng: random.Random, tenant_id: UUID, customer_id: UUID, tier: str, started: datetime
) -> SubscriptionRow:
    """A subscription taken out at `started`: in its trial, or paying from the first day (its
    first billing period then begins at once)."""
    plan, trial_ends = subscription_start(rng, tier, started)
    status, period_end = ("trial", trial_ends) if trial_ends else ("active", add_months(started, 1))
    return SubscriptionRow(
        id=new_uuid(rng),
        created_at=started,
        updated_at=started,
        tenant_id=tenant_id,
        customer_id=customer_id,
        plan=plan,
        monthly_amount=plan_amount(plan),
        currency=CURRENCY,
        status=status,
        started_at=started,
        trial_ends_at=trial_ends,
        current_period_start=started,
        current_period_end=period_end,
        cancelled_at=None,
        ended_at=None,
    )
