"""The README's spark-submit line for a cluster, run as written against a real standalone Spark
cluster on this machine (a master and a worker, started from pyspark's own jars and stopped by
their pids): the capture on the local S3 store, the tables written by the worker's executors,
equal to the source."""

import re
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.source.children import die_with_parent
from devstack.localdb import free_port
from tests.engines.conftest import database_url, spark_environment, spark_home
from tests.engines.test_spark_apply import assert_same_as_source
from tests.test_readme import ROOT

pytestmark = [pytest.mark.engines, pytest.mark.django_db]


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def ready(daemon: str, port: int, folder: Path) -> bool:
    if daemon == "master":
        return listening(port)
    return "Successfully registered with master" in (folder / "worker.log").read_text()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("spark-cluster")
    port = free_port()
    url = f"spark://127.0.0.1:{port}"
    daemons = {
        "master": ["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                   "--port", str(port), "--webui-port", str(free_port())],
        "worker": ["org.apache.spark.deploy.worker.Worker", url, "--host", "127.0.0.1",
                   "--cores", "2", "--memory", "2g", "--webui-port", str(free_port()),
                   "--work-dir", str(folder / "work")],
    }  # fmt: skip
    started = []
    try:
        for name, arguments in daemons.items():
            log = (folder / f"{name}.log").open("wb")
            started.append(
                subprocess.Popen(
                    [str(spark_home() / "bin" / "spark-class"), *arguments],
                    env=spark_environment(),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    preexec_fn=die_with_parent,  # and by its pid below
                )
            )
            deadline = time.monotonic() + 120
            while not ready(name, port, folder):
                assert time.monotonic() < deadline, (folder / f"{name}.log").read_text()[-3000:]
                assert started[-1].poll() is None, (folder / f"{name}.log").read_text()[-3000:]
                time.sleep(0.5)
        yield url
    finally:
        for process in started:
            process.kill()
            process.wait()


def readme_spark_submit() -> str:
    """The README's spark-submit line for a cluster, its continuation lines joined."""
    text = (ROOT / "README.md").read_text()
    found = re.search(r"^```\n(spark-submit --master spark://HOST:7077 .*?)^```", text, re.S | re.M)
    assert found, "the README shows no spark-submit line for a cluster"
    return found.group(1).replace("\\\n", " ").strip()


def test_the_readmes_spark_submit_line_on_a_standalone_cluster(cluster, captures, database, s3_url):
    """The line as written: Delta tables (the same apply writes Iceberg through the same
    executors; tests/engines/test_spark_apply.py runs both formats)."""
    warehouse = f"{s3_url}/delta"
    command = (
        readme_spark_submit()
        .replace("spark://HOST:7077", cluster)
        .replace("s3://bucket/cdc", captures["s3"])
        .replace("s3://bucket/lake", warehouse)
    )
    environment = {
        **spark_environment(),
        "SECRET_KEY": "test-only-" + "x" * 40,
        "DATABASE_URL": database_url(),  # the Iceberg catalog of an s3:// warehouse is there
    }
    done = subprocess.run(
        ["bash", "-c", command], cwd=ROOT, env=environment, capture_output=True, text=True,
        timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"(Spark, {cluster}" in done.stdout, done.stdout
    assert_same_as_source(database, warehouse)
