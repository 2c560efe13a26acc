"""Sessions to the PostgreSQL source of our own: UTC and ISO, so that timestamps print one way
everywhere, and closed whatever happens."""

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2

SESSION_OPTIONS = "-c TimeZone=UTC -c DateStyle=ISO -c IntervalStyle=postgres"


def session_params(params: dict) -> dict:
    """Connection parameters (Django's, less its own cursor class) with a UTC, ISO session:
    timestamps print one way everywhere."""
    options = " ".join(part for part in (params.get("options"), SESSION_OPTIONS) if part)
    plain = {key: value for key, value in params.items() if key != "cursor_factory"}
    return {**plain, "options": options}


@contextmanager
def session(params: dict) -> Iterator:
    """A cursor on a UTC session of its own, committed when the block ends, and the connection
    closed whatever happens."""
    connection = psycopg2.connect(**session_params(params))
    try:
        with connection, connection.cursor() as cursor:
            yield cursor
    finally:
        connection.close()


# What PostgreSQL answers when a statement waited past lock_timeout, or ran past
# statement_timeout (the same code as a cancel by Ctrl-C, told apart by its message).
LOCK_NOT_AVAILABLE = "55P03"
QUERY_CANCELED = "57014"
STATEMENT_TIMEOUT = "statement timeout"


def waited_too_long(error: BaseException) -> str | None:
    """'lock' or 'statement' if a PostgreSQL error (psycopg2's, or Django's wrapping one) is a
    lock_timeout or a statement_timeout; None otherwise."""
    cause = error if isinstance(error, psycopg2.Error) else error.__cause__
    code = getattr(cause, "pgcode", None)
    if code == LOCK_NOT_AVAILABLE:
        return "lock"
    if code == QUERY_CANCELED and STATEMENT_TIMEOUT in str(cause):
        return "statement"
    return None


def lock_holders(params: dict, *, pattern: str = "core\\_%") -> list[str]:
    """The other sessions holding locks on the tables named like `pattern`, strongest lock
    first: `pid 1234 (idle in transaction, AccessExclusiveLock on core_tenant): LOCK ...`.
    Best effort, on a connection of its own: [] if that cannot be had."""
    try:
        with session(params) as cursor:
            cursor.execute(
                "SELECT l.pid, a.state, l.mode, l.relation::regclass::text, "
                "left(regexp_replace(a.query, '\\s+', ' ', 'g'), 80) "
                "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                "WHERE l.granted AND l.locktype = 'relation' AND l.pid <> pg_backend_pid() "
                "AND l.relation::regclass::text LIKE %s "
                "ORDER BY l.mode = 'AccessExclusiveLock' DESC, l.mode = 'ExclusiveLock' DESC, "
                "l.pid, 4",
                [pattern],
            )
            found = cursor.fetchall()
    except psycopg2.Error:
        return []
    seen, holders = set(), []
    for pid, state, mode, table, query in found:
        if pid not in seen:
            seen.add(pid)
            holders.append(f"pid {pid} ({state}, {mode} on {table}): {query}")
    return holders


def bound_statements(timeout: str) -> None:
    """From now on, every connection this process opens gives up on a statement after
    `timeout` (PostgreSQL's statement_timeout, e.g. '30s'). For the web server: a page waits
    that long at most, then fails, instead of holding a worker for ever."""
    from django.db.backends.signals import connection_created

    def bounded(sender, connection, **kwargs) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('statement_timeout', %s, false)", [timeout])

    connection_created.connect(bounded, weak=False, dispatch_uid="bound_statements")
