"""The simulated clock's rhythm: growth, weekdays, pay days, evenings; nothing outside the window."""

import random
from collections import Counter
from datetime import UTC, datetime

from core.generation.clock import HISTORY_DAYS, Timeline, to_datetime

NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)


def draws(count: int = 60_000) -> list[datetime]:
    clock, rng = Timeline(NOW), random.Random(1)
    return [to_datetime(clock.draw(rng)) for _ in range(count)]


MOMENTS = draws()


def per_day(counter: Counter, keys) -> float:
    return sum(counter[key] for key in keys) / len(keys)


def test_everything_falls_inside_the_window():
    clock = Timeline(NOW)
    assert min(MOMENTS).timestamp() >= clock.start
    assert max(MOMENTS) <= NOW
    assert (NOW - min(MOMENTS)).days < HISTORY_DAYS


def test_traffic_grows_over_the_window():
    clock = Timeline(NOW)
    month = 30 * 86400
    first = sum(1 for moment in MOMENTS if moment.timestamp() < clock.start + month)
    last = sum(1 for moment in MOMENTS if moment.timestamp() >= clock.end - month)
    assert 1.8 < last / first < 3.2


def test_weekdays_are_busier_than_weekends():
    by_day = Counter(moment.date() for moment in MOMENTS)
    weekday = [day for day in by_day if day.weekday() < 5]
    weekend = [day for day in by_day if day.weekday() >= 5]
    assert per_day(by_day, weekday) > 1.15 * per_day(by_day, weekend)


def test_the_first_days_of_a_month_peak():
    by_day = Counter(moment.date() for moment in MOMENTS)
    days = list(by_day)[1:-1]  # whole days only
    first = [day for day in days if day.day <= 3]
    ordinary = [day for day in days if 5 <= day.day <= 12]
    assert per_day(by_day, first) > 1.3 * per_day(by_day, ordinary)


def test_evenings_peak_and_nights_are_quiet():
    by_hour = Counter(moment.hour for moment in MOMENTS)
    assert by_hour[19] > 3 * by_hour[3]
    assert by_hour.most_common(1)[0][0] in (18, 19, 20, 21)


def test_the_share_between_two_moments_is_the_mass_there():
    clock = Timeline(NOW)
    middle = clock.start + (clock.end - clock.start) / 2
    assert clock.share_between(clock.start, clock.end) == 1.0
    later = sum(1 for moment in MOMENTS if moment.timestamp() >= middle) / len(MOMENTS)
    assert abs(clock.share_between(middle, clock.end) - later) < 0.01
