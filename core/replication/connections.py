"""Connections for the capture: a UTC session, the replication protocol, the slot's state, and
the errors a user can fix, each as one line."""

import time

import psycopg2
import psycopg2.extras

from core.capture.target import lsn_number
from core.errors import CaptureError
from core.source.catalog import Table, read_schema
from core.source.sessions import session, session_params


def friendly(error: psycopg2.Error, *, slot: str, params: dict) -> CaptureError | None:
    """The errors a user can fix, as one line; None for a lost connection or anything else."""
    code = getattr(error, "pgcode", None)
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    user = params.get("user", "the user")
    if code == "55006":
        return CaptureError(
            f"slot {slot} is being read by another process ({message}): one reader per slot; "
            "stop the other one, or use another --slot"
        )
    if code == "53400":
        return CaptureError(
            "all replication slots are in use: drop one nobody reads (`manage.py "
            "check_replication` lists them; `bin/manage setup_replication --drop --slot NAME`) "
            "or raise max_replication_slots"
        )
    if code == "53300":
        return CaptureError("all WAL senders are busy: raise max_wal_senders, or stop a reader")
    if code == "42501":
        return CaptureError(
            f"{user} may not read replication slots: ALTER ROLE {user} WITH REPLICATION "
            f"(on RDS/Aurora: GRANT rds_replication TO {user})"
        )
    if code == "42704":
        return CaptureError(f"slot {slot} does not exist ({message})")
    return None


def connection_lost(error: BaseException) -> bool:
    """A server that went away: no SQLSTATE at all (libpq gave up on the socket; a restart
    mid-stream shows as `no COPY in progress`), or a connection (08) or shutdown (57) class."""
    code = getattr(error, "pgcode", None)
    return code is None or code[:2] in ("08", "57")


def replication_connection(params: dict):
    return psycopg2.connect(
        **session_params(params),
        connection_factory=psycopg2.extras.LogicalReplicationConnection,
    )


def slot_state(params: dict, slot: str) -> tuple[str | None, int | None]:
    """(plugin, confirmed flush LSN) of the slot; (None, None) if there is none."""
    with session(params) as cursor:
        cursor.execute(
            "SELECT plugin, confirmed_flush_lsn::text FROM pg_replication_slots "
            "WHERE slot_name = %s",
            [slot],
        )
        row = cursor.fetchone()
    if row is None:
        return None, None
    return row[0], lsn_number(row[1]) if row[1] else None


def wait_for_confirmation(params: dict, slot: str, lsn: int, seconds: float = 10) -> None:
    """Until the server has taken the slot's last flush feedback (up to `seconds`): it reads
    the feedback on its own time, and a command that ends, or reads the slot's position, right
    after sending it could otherwise see the position from before."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        _, confirmed = slot_state(params, slot)
        if confirmed is None or confirmed >= lsn:
            return
        time.sleep(0.02)


def current_wal_lsn(params: dict) -> int:
    with session(params) as cursor:
        cursor.execute("SELECT pg_current_wal_lsn()::text")
        lsn = cursor.fetchone()[0]
    return lsn_number(lsn)


def read_tables(params: dict) -> dict[str, Table]:
    with session(params) as cursor:
        tables = read_schema(cursor)
    return {table.name: table for table in tables}
