"""With pytest-xdist (bin/test runs the suite on one worker per core), each worker has a
PostgreSQL server of its own: bin/test starts one per worker (`devstack.localdb run --ephemeral
--servers N`, which lists them in DATABASE_URLS). A server is the unit tests must not share:
some restart it, and a replication slot's name is the whole server's, not one database's.

Loaded first (`-p tests.workers` in pyproject.toml), so DATABASE_URL is the worker's before
pytest-django sets Django up."""

import os

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config, parser, args):
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    urls = os.environ.get("DATABASE_URLS", "").split()
    if worker.startswith("gw") and urls:
        os.environ["DATABASE_URL"] = urls[int(worker[2:]) % len(urls)]
