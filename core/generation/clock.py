"""Simulated time: 180 days of history ending at `now`, with growth and weekly, monthly and daily
rhythm. Every timestamp the seeder draws comes from here."""

import bisect
import math
import random
from datetime import UTC, datetime, timedelta

HISTORY_DAYS = 180
HOUR = 3600.0
DAY = 86400.0

# Traffic more than doubles over the window (a young shop growing).
GROWTH_OVER_WINDOW = 2.5
# Monday … Sunday: busy weekdays, a quieter weekend.
WEEKDAY_FACTOR = (1.0, 1.04, 1.02, 1.06, 1.1, 0.78, 0.72)
# Hour of day (UTC), from the dead of night to the evening peak.
HOUR_FACTOR = (
    0.35, 0.22, 0.15, 0.12, 0.12, 0.18, 0.35, 0.6, 0.85, 1.0, 1.05, 1.1,
    1.2, 1.15, 1.05, 1.0, 1.05, 1.15, 1.35, 1.55, 1.6, 1.4, 1.0, 0.6,
)  # fmt: skip


def monthly_factor(day_of_month: int) -> float:
    """Pay-day peaks: the first days of a month, and a smaller one mid-month."""
    if day_of_month <= 3:
        return 1.5
    if 14 <= day_of_month <= 16:
        return 1.15
    return 1.0


class Timeline:
    """Hourly activity weights over the history window; draws timestamps in proportion to them.

    Times are POSIX seconds (floats) inside the generator and `datetime`s (UTC) in rows.
    """

    def __init__(self, now: datetime, days: int = HISTORY_DAYS):
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        self.now = now.astimezone(UTC)
        self.end = self.now.timestamp()
        self.start = self.end - days * DAY
        self.hours = days * 24
        first_hour = datetime.fromtimestamp(self.start, UTC)
        weights = []
        for index in range(self.hours):
            moment = first_hour + timedelta(hours=index)
            weights.append(
                math.exp(math.log(GROWTH_OVER_WINDOW) * index / self.hours)
                * WEEKDAY_FACTOR[moment.weekday()]
                * monthly_factor(moment.day)
                * HOUR_FACTOR[moment.hour]
            )
        self.weights = weights
        self.cumulative = [0.0]
        for weight in weights:
            self.cumulative.append(self.cumulative[-1] + weight)

    def mass_before(self, moment: float) -> float:
        """Activity from the window's start up to `moment`."""
        position = min(max((moment - self.start) / HOUR, 0.0), float(self.hours))
        index = min(int(position), self.hours - 1)
        return self.cumulative[index] + (position - index) * self.weights[index]

    def draw(self, rng: random.Random, earliest: float | None = None, latest: float | None = None):
        """A moment in [earliest, latest], as likely as the activity then."""
        low = self.mass_before(self.start if earliest is None else earliest)
        high = self.mass_before(self.end if latest is None else latest)
        target = low + rng.random() * (high - low)
        index = min(bisect.bisect_right(self.cumulative, target) - 1, self.hours - 1)
        within = (target - self.cumulative[index]) / self.weights[index]
        moment = self.start + (index + within) * HOUR
        if earliest is not None and moment < earliest:
            moment = earliest
        if latest is not None and moment > latest:
            moment = latest
        return moment

    def share_between(self, earliest: float, latest: float) -> float:
        """The fraction of all activity in the window that falls in [earliest, latest]."""
        return (self.mass_before(latest) - self.mass_before(earliest)) / self.cumulative[-1]


def to_datetime(moment: float) -> datetime:
    return datetime.fromtimestamp(moment, UTC)


def expected_share_after_signup(clock: Timeline, earliest: float) -> float:
    """The mean share of the window's activity that falls after a customer's signup, for
    signups drawn from the timeline after `earliest`: how long an average customer has had to
    act. Per-customer volumes are scaled by (own share / this), so tier averages hold."""
    first = int(max(earliest - clock.start, 0) / HOUR)
    total = clock.cumulative[-1]
    weighted = mass = 0.0
    for index in range(first, clock.hours):
        weight = clock.weights[index]
        after = total - (clock.cumulative[index] + weight / 2)
        weighted += weight * after
        mass += weight
    return weighted / (mass * total) if mass else 1.0
