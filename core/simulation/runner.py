"""The live change stream: business actions one transaction each, paced, counted and timed, in
one process or in several at once, through conflicts and lost connections.

Determinism: action `i` of a run draws from (seed, the run's identity, i), and the identity is
taken from the data the run starts from (its newest moment), not from a counter: a second run
on the data the first one left makes new keys, and the same --seed and --count on the same
starting data (one worker, unthrottled) make exactly the same changes.
"""

import multiprocessing
import os
import queue
import signal
import statistics
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from uuid import UUID

import psycopg2
from django.db import DatabaseError, InterfaceError, OperationalError, connection, connections
from django.db import transaction as db_transaction

from core.errors import SimulationError
from core.generation.pools import pools_for
from core.generation.randomness import WeightedChoice, derive_rng
from core.generation.rows import TABLE_ROWS
from core.simulation.actions import ACTIONS, World
from core.source.backoff import wait_before_retry
from core.source.children import become_child_of

# Simulated seconds per action when unthrottled (--rate 0): as if 20 actions a second.
UNTHROTTLED_STEP = timedelta(seconds=0.05)
# Conflicts with another writer that a fresh try of the action resolves: unique and foreign-key
# violations (a concurrent insert or erasure), serialization failures, deadlocks, and a lock
# not granted within lock_timeout.
RETRYABLE = {"23505", "23503", "40001", "40P01", "55P03"}
ATTEMPTS = 5
PROGRESS_EVERY = 1.0


@dataclass
class SimulationResult:
    actions: Counter = field(default_factory=Counter)
    changes: Counter = field(default_factory=Counter)  # (table, op) -> rows
    latencies: list[float] = field(default_factory=list)  # seconds per committed action
    retries: int = 0  # actions tried again after a conflict with another writer
    abandoned: int = 0  # actions given up after ATTEMPTS conflicts
    reconnects: int = 0
    seconds: float = 0.0
    started_at: datetime | None = None
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

    def merge(self, other: "SimulationResult") -> None:
        self.actions.update(other.actions)
        self.changes.update(other.changes)
        self.latencies += other.latencies
        self.retries += other.retries
        self.abandoned += other.abandoned
        self.reconnects += other.reconnects
        if other.simulated_until and (
            self.simulated_until is None or other.simulated_until > self.simulated_until
        ):
            self.simulated_until = other.simulated_until


def newest_moment(cursor) -> datetime | None:
    """The newest `updated_at` in the data: where simulated time goes on from."""
    cursor.execute(
        "SELECT max(t) FROM ("
        + " UNION ALL ".join(f"SELECT max(updated_at) t FROM {table}" for table in TABLE_ROWS)
        + ") x"
    )
    return cursor.fetchone()[0]


@dataclass(frozen=True)
class Plan:
    """What every worker of one run shares."""

    seed: int
    identity: str
    start: datetime
    rate: float
    count: int | None
    duration: float | None
    speedup: float
    tenant_id: UUID | None
    workers: int


def run_start() -> tuple[str, datetime]:
    """The run's identity and its first simulated moment, both from the newest data."""
    connection.ensure_connection()
    with connection.cursor() as cursor:
        newest = newest_moment(cursor)
    real_now = datetime.now(UTC)
    if newest is None:
        raise SimulationError("there is no data to simulate on: run `bin/manage seed_all` first")
    if newest > real_now + timedelta(seconds=1):
        raise SimulationError(
            f"the newest data is dated {newest:%Y-%m-%d %H:%M:%S} UTC, after the real time now; "
            "simulated time cannot run backwards: reseed with a --now in the past"
        )
    return newest.isoformat(), min(newest + timedelta(seconds=1), real_now)


def error_code(error: BaseException) -> str | None:
    return getattr(error.__cause__, "pgcode", None) or getattr(error, "pgcode", None)


def describe(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def run_worker(
    plan: Plan,
    worker: int,
    *,
    should_stop: Callable[[], bool],
    on_progress: Callable[[SimulationResult], None] | None = None,
    on_fault: Callable[[str], None] | None = None,
) -> SimulationResult:
    """Actions worker, worker + workers, … of the run, each in its own transaction."""
    result = SimulationResult(started_at=plan.start)
    choose = WeightedChoice(list(ACTIONS), [weight for _, weight in ACTIONS.values()])
    world = World(None, None, plan.seed, pools_for(plan.seed), plan.start, plan.tenant_id)
    began = last_report = time.monotonic()
    index = worker
    while not should_stop():
        if plan.count is not None and index >= plan.count:
            break
        elapsed = time.monotonic() - began
        if plan.duration is not None and elapsed >= plan.duration:
            break
        if plan.rate > 0:
            wait = index / plan.rate - elapsed
            if wait > 0:
                time.sleep(min(wait, 0.5))
                continue
            simulated = plan.start + timedelta(seconds=elapsed * plan.speedup)
        else:
            simulated = plan.start + UNTHROTTLED_STEP * index * plan.speedup
        world.now = min(simulated, datetime.now(UTC))
        name, changes, seconds = run_action(
            world, plan, index, choose, result, should_stop, on_fault
        )
        if name is not None:
            result.latencies.append(seconds)
            result.actions[name] += 1
            result.changes.update(changes)
        index += plan.workers
        if on_progress and time.monotonic() - last_report >= PROGRESS_EVERY:
            result.seconds = time.monotonic() - began
            on_progress(result)
            last_report = time.monotonic()
    result.seconds = time.monotonic() - began
    result.simulated_until = world.now
    return result


def run_action(
    world: World,
    plan: Plan,
    index: int,
    choose: WeightedChoice,
    result: SimulationResult,
    should_stop: Callable[[], bool],
    on_fault: Callable[[str], None] | None,
) -> tuple[str | None, Counter, float]:
    """Run action `index` to its commit: a conflict with another writer tries it afresh (new
    draws), a lost connection waits, reconnects and tries the same draws again. Returns the
    action's name (None if abandoned or stopped), its changes and its commit latency."""
    attempt, outage = 0, 0
    while True:
        rng = derive_rng(plan.seed, "simulate", plan.identity, index, attempt)
        name = choose(rng)
        action, _ = ACTIONS[name]
        started = time.perf_counter()
        try:
            with db_transaction.atomic(), connection.cursor() as cursor:
                world.cursor, world.raw_connection = cursor, connection.connection
                changes = action(world, rng)
        except (DatabaseError, psycopg2.Error) as error:
            # COPY goes through the raw psycopg2 connection: its errors are not Django's.
            if error_code(error) in RETRYABLE:
                attempt += 1
                if attempt < ATTEMPTS:
                    result.retries += 1
                    continue
                result.abandoned += 1
                return None, Counter(), 0.0
            if not isinstance(
                error,
                OperationalError
                | InterfaceError
                | psycopg2.OperationalError
                | psycopg2.InterfaceError,
            ):
                raise  # a bug: let it show
            connection.close()
            if on_fault and not outage:  # one line per outage, not per try
                on_fault(f"lost the connection to PostgreSQL ({describe(error)}); reconnecting")
            if not wait_before_retry(outage, should_stop):
                return None, Counter(), 0.0
            outage += 1
            continue
        if outage:
            result.reconnects += 1
            if on_fault:
                on_fault(f"reconnected to PostgreSQL after {outage} tries; carrying on")
        return name, changes, time.perf_counter() - started


def simulate(
    *,
    seed: int,
    rate: float,
    count: int | None = None,
    duration: float | None = None,
    speedup: float = 1.0,
    tenant_id: UUID | None = None,
    workers: int = 1,
    should_stop: Callable[[], bool] = lambda: False,
    on_progress: Callable[[SimulationResult], None] | None = None,
    on_fault: Callable[[str], None] | None = None,
) -> SimulationResult:
    """Run actions until `count` or `duration` (or `should_stop()`); `rate` actions a second in
    all, or as fast as possible with 0. Simulated time starts after the newest data and runs
    `speedup` times faster than wall time (never past the real now). With `workers` above one,
    that many processes run the actions at once, each on its own connection."""
    identity, start = run_start()
    plan = Plan(seed, identity, start, rate, count, duration, speedup, tenant_id, workers)
    if workers == 1:
        return run_worker(
            plan, 0, should_stop=should_stop, on_progress=on_progress, on_fault=on_fault
        )
    return run_workers(plan, should_stop=should_stop, on_progress=on_progress, on_fault=on_fault)


def worker_process(parent: int, plan: Plan, worker: int, messages, stop) -> None:
    """In a worker process: run its share of the actions and report to the parent. It dies
    with the parent, and opens a connection of its own."""
    become_child_of(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        result = run_worker(
            plan,
            worker,
            should_stop=stop.is_set,
            on_progress=lambda partial: messages.put(("progress", worker, partial)),
            on_fault=lambda line: messages.put(("fault", worker, line)),
        )
        messages.put(("done", worker, result))
    except BaseException:
        messages.put(("error", worker, traceback.format_exc()))
    finally:
        connection.close()


class WorkerFailed(RuntimeError):
    """A worker process hit a bug; its traceback is the message."""


def run_workers(
    plan: Plan,
    *,
    should_stop: Callable[[], bool],
    on_progress: Callable[[SimulationResult], None] | None,
    on_fault: Callable[[str], None] | None,
) -> SimulationResult:
    context = multiprocessing.get_context("fork")
    messages, stop = context.Queue(), context.Event()
    connections.close_all()  # each worker opens its own connection
    began = time.monotonic()
    parent = os.getpid()
    processes = [
        context.Process(
            target=worker_process, args=(parent, plan, worker, messages, stop), daemon=True
        )
        for worker in range(plan.workers)
    ]
    for process in processes:
        process.start()
    partial: dict[int, SimulationResult] = {}
    finished: dict[int, SimulationResult] = {}
    failure = None
    last_report = began
    while len(finished) < plan.workers:
        if should_stop() or failure:
            stop.set()
        try:
            kind, worker, payload = messages.get(timeout=0.2)
        except queue.Empty:
            dead = [p for i, p in enumerate(processes) if not p.is_alive() and i not in finished]
            if dead and messages.empty():
                failure = failure or f"a worker process died (exit code {dead[0].exitcode})"
                break
            continue
        if kind == "done":
            finished[worker] = payload
        elif kind == "progress":
            partial[worker] = payload
        elif kind == "fault" and on_fault:
            on_fault(f"worker {worker + 1}: {payload}")
        elif kind == "error":
            failure = payload
            finished[worker] = SimulationResult()
        if on_progress and time.monotonic() - last_report >= PROGRESS_EVERY and partial:
            on_progress(combined({**partial, **finished}, began, plan))
            last_report = time.monotonic()
    stop.set()
    for process in processes:
        process.join(timeout=10)
        if process.is_alive():
            process.kill()
    if failure:
        raise WorkerFailed(failure)
    return combined(finished, began, plan)


def combined(results: dict[int, SimulationResult], began: float, plan: Plan) -> SimulationResult:
    total = SimulationResult(started_at=plan.start)
    for result in results.values():
        total.merge(result)
    total.seconds = time.monotonic() - began
    return total
