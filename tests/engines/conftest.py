"""The engines' tests share one seeded shop and its captures, and one Spark JVM, per test
session; the JVM is stopped by its process id at the end."""

import contextlib
import io
import os
import signal
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection

from core.seeding.loading import delete_all
from tests.conftest import replicated_shop


def drain(folder: Path | str, slot: str, *args: str) -> None:
    call_command(
        "cdc_tail", "--slot", f"engines_{slot}", "--output", str(folder), *args,
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


@pytest.fixture(scope="session")
def captures(
    tmp_path_factory, django_db_setup, django_db_blocker, s3_store
) -> Iterator[dict[str, Path | str]]:
    """One small shop captured three times (a slot each): in Parquet and in CSV into folders,
    and in Parquet onto the local S3 store; its full load and two batches of simulated changes.
    Shared by the engines' tests, which only read it; deleted with its slots at the end."""
    from core.simulation.runner import simulate

    folder = tmp_path_factory.mktemp("engines")
    found = {data_format: folder / data_format for data_format in ("parquet", "csv")}
    found["s3"] = f"s3://lakehouse/engines-{uuid.uuid4().hex[:8]}/cdc"
    with django_db_blocker.unblock():
        with replicated_shop(seed=61):
            for name, output in found.items():
                drain(output, name, "--data-format", "csv" if name == "csv" else "parquet")
            for round_number in range(2):
                simulate(seed=round_number, rate=0, count=300)
                for name, output in found.items():
                    drain(output, name)
            yield found
        with connection.cursor() as cursor:
            delete_all(cursor)


@pytest.fixture
def capture(captures) -> Path:
    return captures["parquet"]


@pytest.fixture
def database(django_db_blocker):
    """The module's shop, open to the test (the tests here do not roll it back)."""
    with django_db_blocker.unblock():
        yield connection.get_connection_params()


def database_url() -> str:
    """The test database, for the commands a test starts in processes of their own."""
    database = connection.settings_dict
    return (
        f"postgres://{database['USER']}:{database['PASSWORD'] or ''}@"
        f"{database['HOST'] or '127.0.0.1'}:{database['PORT'] or 5432}/{database['NAME']}"
    )


def spark_home() -> Path:
    import pyspark  # installed by make engines, not by make up: imported when a test runs

    return Path(pyspark.__file__).parent


def spark_environment() -> dict[str, str]:
    """For the Spark processes a test starts: pyspark's Spark, Java 17 or 21, this Python."""
    from devstack import engines

    return {
        **os.environ,
        "SPARK_HOME": str(spark_home()),
        "JAVA_HOME": str(engines.java_home(17, 21)),
        "PYSPARK_PYTHON": sys.executable,
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
    }
