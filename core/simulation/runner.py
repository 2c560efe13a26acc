"""The live change stream: business actions one transaction each, paced, counted and timed."""

import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID

from django.db import connection, transaction

from core.generation.pools import pools_for
from core.generation.randomness import WeightedChoice, derive_rng
from core.simulation.actions import ACTIONS, World

# Simulated seconds per action when unthrottled (--rate 0): as if 20 actions a second.
UNTHROTTLED_STEP = timedelta(seconds=0.05)


@dataclass
class SimulationResult:
    actions: Counter = field(default_factory=Counter)
    changes: Counter = field(default_factory=Counter)  # (table, op) -> rows
    latencies: list[float] = field(default_factory=list)  # seconds per committed action
    seconds: float = 0.0
    simulated_until: datetime | None = None

    @property
    def row_changes(self) -> int:
        return sum(self.changes.values())

    def latency_ms(self, quantile: float) -> float:
        if not self.latencies:
            return 0.0
        if len(self.latencies) < 2:
            return self.latencies[0] * 1000
        return statistics.quantiles(self.latencies, n=100)[int(quantile * 100) - 1] * 1000


def simulation_start(cursor) -> datetime:
    """Simulated time continues from the newest moment the data holds."""
    cursor.execute(
        "SELECT max(t) FROM (SELECT max(updated_at) t FROM core_event UNION ALL "
        "SELECT max(updated_at) FROM core_order UNION ALL SELECT max(updated_at) FROM core_customer"
        " UNION ALL SELECT max(updated_at) FROM core_invoice UNION ALL "
        "SELECT max(updated_at) FROM core_subscription) x"
    )
    latest = cursor.fetchone()[0]
    return (latest or datetime.now(UTC)) + timedelta(seconds=1)


def simulate(
    *,
    seed: int,
    rate: float,
    count: int | None = None,
    duration: float | None = None,
    speedup: float = 1.0,
    tenant_id: UUID | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    on_progress: Callable[[SimulationResult], None] | None = None,
) -> SimulationResult:
    """Run actions until `count` or `duration` (or `should_stop()`); `rate` actions a second,
    or as fast as possible with 0. Simulated time starts after the newest data and runs
    `speedup` times faster than wall time (never past the real now)."""
    result = SimulationResult()
    choose = WeightedChoice(list(ACTIONS), [weight for _, weight in ACTIONS.values()])
    connection.ensure_connection()
    with connection.cursor() as cursor:
        start = simulation_start(cursor)
        world = World(cursor, connection.connection, seed, pools_for(seed), start, tenant_id)
        began = time.monotonic()
        last_report = began
        index = 0
        while not should_stop():
            if count is not None and index >= count:
                break
            elapsed = time.monotonic() - began
            if duration is not None and elapsed >= duration:
                break
            if rate > 0:
                wait = index / rate - elapsed
                if wait > 0:
                    time.sleep(min(wait, 0.5))
                    continue
                simulated = start + timedelta(seconds=elapsed * speedup)
            else:
                simulated = start + UNTHROTTLED_STEP * index * speedup
            world.now = min(simulated, datetime.now(UTC))
            rng = derive_rng(seed, "simulate", index)
            name = choose(rng)
            action, _ = ACTIONS[name]
            committed = time.perf_counter()
            with transaction.atomic():
                changes = action(world, rng)
            result.latencies.append(time.perf_counter() - committed)
            result.actions[name] += 1
            result.changes.update(changes)
            index += 1
            if on_progress and time.monotonic() - last_report >= 1:
                result.seconds = time.monotonic() - began
                on_progress(result)
                last_report = time.monotonic()
        result.seconds = time.monotonic() - began
        result.simulated_until = world.now
    return result
