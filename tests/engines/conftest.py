"""The engines' tests share one seeded shop and capture per module, and one Spark JVM per test
session, stopped by its process id at the end."""

import contextlib
import io
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from core.loading import delete_all
from tests.conftest import replicated_shop

SLOT = "engines_tail"


def drain(folder: Path, *args: str) -> None:
    call_command(
        "cdc_tail", "--slot", SLOT, "--output", str(folder), *args,
        stdout=io.StringIO(), stderr=io.StringIO(),
    )  # fmt: skip


@pytest.fixture(scope="session")
def spark():
    """The Spark session lakehouse_apply --engine spark uses, started once."""
    from core.lake.spark import spark_process_id, spark_session

    session = spark_session()
    pid = spark_process_id()
    yield session
    with contextlib.suppress(Exception):
        session.stop()
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def shop_capture(folder: Path, data_format: str, django_db_blocker) -> Iterator[Path]:
    """A small shop, its full load and two batches of simulated changes, captured; deleted
    with its slot afterwards."""
    from core.simulation.runner import simulate

    with django_db_blocker.unblock():
        with replicated_shop(seed=61):
            drain(folder, "--data-format", data_format)
            for round_number in range(2):
                simulate(seed=round_number, rate=0, count=300)
                drain(folder)
            yield folder
        with connection.cursor() as cursor:
            delete_all(cursor)


@pytest.fixture
def database(django_db_blocker):
    """The module's shop, open to the test (the tests here do not roll it back)."""
    with django_db_blocker.unblock():
        yield connection.get_connection_params()
