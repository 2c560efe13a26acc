"""lakehouse_apply --engine spark killed with SIGKILL mid-apply: its JVM goes with it (the
gateway JVM ends when the Python that started it closes its end of the pipe), no session of
it is left in PostgreSQL, and a rerun ends equal to the source."""

import subprocess
import sys
import uuid

import pytest

from tests.engines.conftest import database_url, spark_environment
from tests.engines.test_spark_apply import apply, assert_same_as_source
from tests.kills import every_table_answers_at_once, kill_and_check, tagged
from tests.seeded import wait_for
from tests.test_settings import ROOT

pytestmark = [pytest.mark.engines, pytest.mark.django_db]


def test_a_killed_spark_apply_takes_its_jvm_along_and_a_rerun_finishes_it(
    capture, database, tmp_path
):
    warehouse = tmp_path / "warehouse"
    name = f"spark-{uuid.uuid4().hex[:8]}"
    environment = tagged(
        {**spark_environment(), "DATABASE_URL": database_url(), "DJANGO_ENV_FILE": "/nonexistent",
         "SECRET_KEY": "test-only-" + "x" * 40},
        name,
    )  # fmt: skip
    command = [sys.executable, "manage.py", "lakehouse_apply", str(capture),
               "--warehouse", str(warehouse), "--engine", "spark"]  # fmt: skip
    running = subprocess.Popen(
        command, cwd=ROOT, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        # Mid-apply: the first table committed, the rest to come.
        wait_for(
            lambda: any(warehouse.glob("*/_delta_log/*.json")) or running.poll() is not None,
            seconds=300,
            what="Spark's first commit",
        )
        assert running.poll() is None, running.stderr.read()
        tree = kill_and_check(running, name)
    finally:
        if running.poll() is None:  # the test failed before its kill: never left running
            running.kill()
            running.wait()
    assert any(process.command == "java" for process in tree), tree
    every_table_answers_at_once()
    assert "applied" in apply(capture, warehouse, "delta", "spark")
    assert_same_as_source(database, warehouse)
