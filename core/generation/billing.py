"""Subscriptions and their monthly invoices, with lifecycles whose dates agree."""

import random
from dataclasses import dataclass
from datetime import datetime
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
TRIAL_RATE = 0.6
TRIAL_CONVERSION = 0.75
MONTHLY_CANCELLATION = 0.035
MONTHLY_PAYMENT_FAILURE = 0.008


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


def subscription_for_customer(
    *, seed: int, customer: CustomerRef, tier: str, clock: Timeline, ordinal: int = 1
) -> tuple[SubscriptionRow, SubscriptionRef]:
    """A subscription started after signup, with an optional trial, then month by month a small
    chance to be cancelled or to lapse on a failed payment."""
    rng = derive_rng(seed, "subscription", customer.tenant_id, customer.number, ordinal)
    plan = PLANS.get(tier, SMALL_BUSINESS_PLANS)(rng)
    started_at = clock.draw(rng, customer.signed_up, clock.end)
    started = to_datetime(started_at)
    now = clock.now
    trial_ends = started + TRIAL_LENGTH if rng.random() < TRIAL_RATE else None
    status, cancelled_at, ended_at = "active", None, None
    period_start = period_end = None
    billing_starts = trial_ends or started
    changed = started
    if trial_ends is not None and trial_ends > now:
        status, period_start, period_end, billing_starts = "trial", started, trial_ends, None
    elif trial_ends is not None and rng.random() > TRIAL_CONVERSION:
        # Half of the trials that do not convert are cancelled by the customer; the rest lapse.
        billing_starts, period_start, period_end = None, started, trial_ends
        if rng.random() < 0.5:
            cancelled_at = to_datetime(started_at + rng.random() * TRIAL_LENGTH.total_seconds())
            status, ended_at = "cancelled", cancelled_at
        else:
            status, ended_at = "expired", trial_ends
        changed = ended_at
    else:
        if trial_ends is not None:
            changed = trial_ends
        months = 0
        while True:
            period_start = add_months(billing_starts, months)
            period_end = add_months(billing_starts, months + 1)
            if period_end > now:
                break  # the current period
            # A month ended: renew, cancel some time in the next month, or lapse unpaid.
            months += 1
            draw = rng.random()
            if draw < MONTHLY_CANCELLATION:
                period_start, period_end = period_end, add_months(billing_starts, months + 1)
                span = min(period_end, now).timestamp() - period_start.timestamp()
                cancelled_at = to_datetime(period_start.timestamp() + rng.random() * span)
                status, ended_at = "cancelled", cancelled_at
                break
            if draw < MONTHLY_CANCELLATION + MONTHLY_PAYMENT_FAILURE:
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
    """(status, issued_at, paid_at) of an invoice raised at `issued`, as of `now`."""
    if voided:
        return "cancelled", issued, None
    if (now - issued).total_seconds() < DAY and rng.random() < 0.5:
        return "draft", None, None
    draw = rng.random()
    if draw < 0.93:
        delay = rng.uniform(0, 10) * DAY  # most pay within terms
    elif draw < 0.98:
        delay = rng.uniform(10, 60) * DAY  # late payers
    else:
        delay = None  # never pays
    if delay is not None and issued.timestamp() + delay <= now.timestamp():
        return "paid", issued, to_datetime(issued.timestamp() + delay)
    if invoice_due_date(issued) < now.date():
        return "overdue", issued, None
    return "sent", issued, None


def invoices_for_subscription(
    *, seed: int, subscription: SubscriptionRef, now: datetime, skip_periods: int = 0
) -> list[InvoiceRow]:
    """One invoice per billing month that began while the subscription was billable, from the
    `skip_periods`-th on (those before were raised already). The invoice of the month in which a
    customer cancelled is voided if they cancelled within a week of it starting."""
    if subscription.billing_starts is None:
        return []
    rows = []
    month = skip_periods
    while True:
        period_start = add_months(subscription.billing_starts, month)
        if period_start > now:
            break
        ended = subscription.ended_at
        if ended is not None and period_start >= ended:
            break
        period_end = add_months(subscription.billing_starts, month + 1)
        rng = derive_rng(seed, "invoice", subscription.id, month)
        voided = (
            subscription.cancelled
            and ended is not None
            and ended < period_end
            and (ended - period_start).days < 7
        )
        status, issued_at, paid_at = invoice_status(rng, period_start, now, voided)
        rows.append(
            InvoiceRow(
                id=new_uuid(rng),
                created_at=period_start,
                updated_at=paid_at or period_start,
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
                due_date=invoice_due_date(period_start),
                paid_at=paid_at,
            )
        )
        month += 1
    return rows
