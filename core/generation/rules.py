"""Business rules with one owner: what an order costs, what a plan costs, when an invoice is due.

The seeder and the live simulator both call these; tests check the data against them.
"""

import calendar
from datetime import date, datetime, timedelta
from decimal import Decimal

CURRENCY = "USD"
TAX_RATE_PERCENT = 8
FREE_SHIPPING_FROM_CENTS = 5000
SHIPPING_CENTS = 599
INVOICE_PAYMENT_TERMS = timedelta(days=14)
TRIAL_LENGTH = timedelta(days=14)

PLAN_MONTHLY_CENTS = {"basic": 999, "pro": 2999, "premium": 9999, "enterprise": 29999}


def money(cents: int) -> Decimal:
    """Exact decimal dollars from integer cents."""
    return Decimal(cents).scaleb(-2)


def plan_amount(plan: str) -> Decimal:
    return money(PLAN_MONTHLY_CENTS[plan])


def order_amounts(line_totals_cents: list[int], discount_percent: int) -> dict[str, int]:
    """Subtotal, discount, tax, shipping and total in cents: total = subtotal - discount + tax +
    shipping, with tax on the discounted subtotal and free shipping from $50."""
    subtotal = sum(line_totals_cents)
    discount = subtotal * discount_percent // 100
    taxable = subtotal - discount
    tax = (taxable * TAX_RATE_PERCENT + 50) // 100
    shipping = 0 if taxable >= FREE_SHIPPING_FROM_CENTS else SHIPPING_CENTS
    return {
        "subtotal": subtotal,
        "discount": discount,
        "tax": tax,
        "shipping": shipping,
        "total": taxable + tax + shipping,
    }


def add_months(moment: datetime, months: int) -> datetime:
    """The same day and time `months` later, clamped to the month's last day."""
    month_index = moment.month - 1 + months
    year, month = moment.year + month_index // 12, month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def invoice_due_date(issued: datetime) -> date:
    return (issued + INVOICE_PAYMENT_TERMS).date()


def order_number(placed: datetime, customer_number: int, sequence: int) -> str:
    """Readable and unique per tenant without a counter: date, customer, the customer's n-th
    order. Sorting by it sorts orders by day."""
    return f"{placed:%y%m%d}-{customer_number:06d}-{sequence:02d}"


def invoice_number(period_start: date, customer_number: int, subscription_ordinal: int) -> str:
    """Unique per tenant: one invoice per subscription per month."""
    return f"INV-{period_start:%y%m}-{customer_number:06d}-{subscription_ordinal}"
