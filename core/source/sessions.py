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
