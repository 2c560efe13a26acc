"""Helpers for tests that read a seeded database with SQL."""

import os

from django.db import connection

from core.generation.rows import TABLE_ROWS


def rows(sql: str, params: list | None = None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params or [])
        return cursor.fetchall()


def value(sql: str, params: list | None = None):
    return rows(sql, params)[0][0]


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
