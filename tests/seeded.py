"""Helpers for tests that read a seeded database with SQL."""

import os
import subprocess
import sys
import time
from pathlib import Path

from django.db import connection

from core.generation.rows import TABLE_ROWS


def rows(sql: str, params: list | None = None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.fetchall()


def value(sql: str, params: list | None = None):
    return rows(sql, params)[0][0]


def wait_for(condition, seconds: float = 60, what: str = "the condition") -> None:
    """Poll until `condition()` is true (a fixed sleep is too short on a loaded machine, and
    wasted on an idle one)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def events_grow_past(count: int) -> bool:
    """Whether rows were added to core_event since it held `count` (a writer is at work)."""
    return value("SELECT count(*) FROM core_event") > count


def slot_is_read(slot: str) -> bool:
    return bool(
        value("SELECT count(*) FROM pg_replication_slots WHERE slot_name = %s AND active", [slot])
    )


def digest() -> dict[str, str]:
    """An md5 of every core table's full contents, rows in id order."""
    return {
        table: value(
            f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t.id), '')) FROM {table} t"
        )
        for table in TABLE_ROWS
    }


def counts() -> dict[str, int]:
    return {table: value(f"SELECT count(*) FROM {table}") for table in TABLE_ROWS}


ORDERS_NOT_ADDING_UP = (
    "SELECT count(*) FROM core_order o JOIN (SELECT order_id, sum(line_total) s "
    "FROM core_orderitem GROUP BY 1) i ON i.order_id = o.id WHERE o.subtotal <> i.s"
)


def subprocess_environment() -> dict[str, str]:
    """The environment for a manage.py subprocess that must use the test database."""
    settings = connection.settings_dict
    return {
        **os.environ,
        "DATABASE_URL": (
            f"postgres://{settings['USER']}:{settings['PASSWORD']}@{settings['HOST']}:"
            f"{settings['PORT']}/{settings['NAME']}"
        ),
        "DJANGO_ENV_FILE": "/nonexistent",
    }


def manage_py(*args: str, env: dict[str, str] | None = None, **popen) -> subprocess.Popen:
    """`manage.py ARGS` in a subprocess on the test database (`env` adds to its environment),
    its output captured as text."""
    return subprocess.Popen(
        [sys.executable, "manage.py", *args],
        cwd=Path(__file__).resolve().parent.parent,
        env={**subprocess_environment(), **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **popen,
    )


def restart_server() -> None:
    """`pg_ctl restart -m fast` of the server the tests use (the throwaway one `bin/test`
    starts): every connection is cut, as in a real restart."""
    from devstack.localdb import SERVICE_USER, find_pg_bin

    data_dir = Path(value("SHOW data_directory"))
    command = [
        str(find_pg_bin() / "pg_ctl"),
        "restart",
        "-m",
        "fast",
        "-w",
        "-D",
        str(data_dir),
        "-l",
        str(data_dir.parent / "server.log"),
    ]
    if os.geteuid() == 0:
        command = ["runuser", "-u", SERVICE_USER, "--", *command]
    connection.close()
    subprocess.run(command, cwd="/", check=True, capture_output=True, timeout=60)


def invariant_violations(end, *, one_writer: bool = True) -> dict[str, int]:
    """Rows breaking a rule the seeder and the simulator must both keep, per rule; all zero in a
    healthy shop. `end` is the newest simulated moment.

    With several writers (`one_writer=False`) an order may commit at the old price while a price
    change stamped earlier by another writer's clock waits for it: business time and commit
    order disagree, as they do in any real shop (and as a CDC pipeline must handle), so the
    price-of-the-day rule is left out there.
    """
    checks = {
        "orders not adding up": ORDERS_NOT_ADDING_UP,
        "orders without items": "SELECT count(*) FROM core_order o WHERE NOT EXISTS "
        "(SELECT 1 FROM core_orderitem i WHERE i.order_id = o.id)",
        "orders without one purchase event": "SELECT count(*) FROM core_order o WHERE "
        "(SELECT count(*) FROM core_event e WHERE e.order_id = o.id) <> 1",
        "purchase events off their order": "SELECT count(*) FROM core_event e JOIN core_order o "
        "ON o.id = e.order_id WHERE e.customer_id <> o.customer_id OR e.created_at <> o.created_at",
        "amounts off their plan": "SELECT count(*) FROM core_subscription WHERE monthly_amount <> "
        "CASE plan WHEN 'basic' THEN 9.99 WHEN 'pro' THEN 29.99 WHEN 'premium' THEN 99.99 "
        "ELSE 299.99 END",
        "invoices off their amount range": "SELECT count(*) FROM core_invoice WHERE amount NOT IN "
        "(9.99, 29.99, 99.99, 299.99)",
        "overdue before their due date": (
            "SELECT count(*) FROM core_invoice WHERE status = 'overdue' AND due_date >= %s",
            [end.date()],
        ),
        "sessions of several customers": "SELECT count(*) FROM (SELECT session_id FROM core_event "
        "GROUP BY 1 HAVING count(DISTINCT customer_id) > 1) x",
        "sessions longer than three hours": "SELECT count(*) FROM (SELECT session_id FROM "
        "core_event GROUP BY 1 HAVING max(created_at) - min(created_at) > interval '3 hours') x",
    }
    if one_writer:
        checks["items not at the price of their day"] = (
            "SELECT count(*) FROM core_orderitem i JOIN core_order o ON o.id = i.order_id "
            "JOIN core_product p ON p.id = i.product_id "
            "WHERE i.unit_price <> p.price AND o.created_at > p.updated_at"
        )
    for table in TABLE_ROWS:
        checks[f"{table} from the future"] = (
            f"SELECT count(*) FROM {table} WHERE created_at > %s OR updated_at > %s",
            [end, end],
        )
    found = {}
    for name, check in checks.items():
        sql, params = check if isinstance(check, tuple) else (check, [])
        found[name] = value(sql, params)
    return {name: count for name, count in found.items() if count}
