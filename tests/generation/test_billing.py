"""Billing rules without a database: anchored periods, lifecycles, invoice stories."""

import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from uuid import UUID

import pytest

from core.generation import billing
from core.generation.billing import (
    billing_month,
    billing_period,
    changed_plan,
    invoice_status,
    invoice_status_now,
    new_subscription,
    plan_for_tier,
    renewal_outcome,
    trial_outcome,
)
from core.generation.rules import add_months, invoice_due_date, plan_amount

T = datetime(2027, 1, 31, 10, 30, tzinfo=UTC)
ORDER = {"draft": 0, "sent": 1, "overdue": 2, "paid": 3}


def test_periods_are_anchored_to_the_first_billed_day_not_chained():
    starts = [billing_period(T, month)[0].date().isoformat() for month in range(5)]
    assert starts == ["2027-01-31", "2027-02-28", "2027-03-31", "2027-04-30", "2027-05-31"]
    # Chaining month to month would drift to the 28th for good.
    chained = [T]
    for _ in range(4):
        chained.append(add_months(chained[-1], 1))
    assert chained[-1].day == 28 and billing_period(T, 4)[0].day == 31


def test_leap_years():
    anchor = datetime(2028, 1, 31, tzinfo=UTC)
    assert billing_period(anchor, 1)[0].date().isoformat() == "2028-02-29"
    leap_day = datetime(2028, 2, 29, tzinfo=UTC)
    assert billing_period(leap_day, 12)[0].date().isoformat() == "2029-02-28"
    assert billing_period(leap_day, 48)[0].date().isoformat() == "2032-02-29"


def test_each_period_ends_where_the_next_begins():
    for month in range(30):
        assert billing_period(T, month)[1] == billing_period(T, month + 1)[0]


@pytest.mark.parametrize("anchor_day", [1, 15, 28, 29, 30, 31])
def test_billing_month_finds_the_period_holding_a_moment(anchor_day):
    anchor = datetime(2026, 12, anchor_day, 8, tzinfo=UTC)
    rng = random.Random(anchor_day)
    for _ in range(300):
        moment = anchor + timedelta(seconds=rng.uniform(0, 3 * 365 * 86400))
        month = billing_month(anchor, moment)
        start, end = billing_period(anchor, month)
        assert start <= moment < end
    assert billing_month(anchor, anchor) == 0
    assert billing_month(anchor, anchor - timedelta(seconds=1)) == -1


def shares(draw, count: int = 20_000) -> dict[str, float]:
    rng = random.Random(5)
    seen = Counter(draw(rng) for _ in range(count))
    return {key: number / count for key, number in seen.items()}


def test_trials_convert_three_times_in_four():
    outcomes = shares(trial_outcome)
    assert outcomes["converted"] == pytest.approx(billing.TRIAL_CONVERSION, abs=0.015)
    assert outcomes["cancelled"] == pytest.approx(outcomes["expired"], abs=0.015)


def test_renewals_mostly_renew():
    outcomes = shares(renewal_outcome, 100_000)
    assert outcomes["cancel"] == pytest.approx(billing.MONTHLY_CANCELLATION, abs=0.003)
    assert outcomes["lapse"] == pytest.approx(billing.MONTHLY_PAYMENT_FAILURE, abs=0.002)


def test_bigger_tenants_sell_bigger_plans():
    enterprise = shares(lambda rng: plan_for_tier(rng, "enterprise"))
    small = shares(lambda rng: plan_for_tier(rng, "small_business"))
    assert enterprise["enterprise"] > 3 * small["enterprise"]
    assert small["basic"] > enterprise["basic"]
    assert set(enterprise) == set(small) == set(billing.PLAN_ORDER)


def test_a_plan_change_is_one_step_within_the_range():
    rng = random.Random(1)
    for plan in billing.PLAN_ORDER:
        for _ in range(50):
            moved = changed_plan(rng, plan)
            assert abs(billing.PLAN_ORDER.index(moved) - billing.PLAN_ORDER.index(plan)) <= 1
    assert changed_plan(random.Random(0), "enterprise") in ("premium", "enterprise")


def test_an_invoice_story_only_moves_forwards_and_pays_once():
    issued = T
    moments = [issued + timedelta(hours=hours) for hours in range(0, 24 * 90, 7)]
    stories = Counter()
    for seed in range(300):
        seen = [invoice_status(random.Random(seed), issued, now, voided=False) for now in moments]
        ranks = [ORDER[status] for status, _, _ in seen]
        assert ranks == sorted(ranks)
        paid = {paid_at for status, _, paid_at in seen if status == "paid"}
        assert len(paid) <= 1  # the payment moment does not depend on when one looks
        for (status, issued_at, paid_at), now in zip(seen, moments, strict=True):
            assert (paid_at is not None) == (status == "paid")
            assert paid_at is None or issued <= paid_at <= now
            assert (issued_at is None) == (status == "draft")
            if status == "overdue":
                assert now.date() > invoice_due_date(issued)
        stories[seen[-1][0]] += 1
    assert stories["paid"] > 250 and stories["overdue"] > 0  # a few never pay


def test_a_stored_invoice_is_asked_the_same_story_it_was_raised_with():
    subscription = UUID(int=12345)
    period = T.date()
    later = [T + timedelta(days=days) for days in (0.5, 3, 20, 70)]
    first = [
        invoice_status_now(
            seed=9, subscription_id=subscription, period_start=period, raised=T, now=now
        )
        for now in later
    ]
    again = [
        invoice_status_now(
            seed=9, subscription_id=subscription, period_start=period, raised=T, now=now
        )
        for now in later
    ]
    assert first == again


def test_a_new_subscription_is_a_trial_or_billed_from_its_first_day():
    kinds = Counter()
    for seed in range(400):
        row = new_subscription(
            rng=random.Random(seed),
            tenant_id=UUID(int=1),
            customer_id=UUID(int=2),
            tier="mid_market",
            started=T,
        )
        assert row.monthly_amount == plan_amount(row.plan)
        assert row.created_at == row.started_at == row.current_period_start == T
        if row.status == "trial":
            assert row.trial_ends_at == row.current_period_end == T + billing.TRIAL_LENGTH
        else:
            assert row.status == "active" and row.trial_ends_at is None
            assert row.current_period_end == billing_period(T, 0)[1]
        kinds[row.status] += 1
    assert kinds["trial"] / 400 == pytest.approx(billing.TRIAL_RATE, abs=0.07)
