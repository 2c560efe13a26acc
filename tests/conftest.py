import contextlib
import os
import re
import uuid
from datetime import UTC, datetime

import pytest
from django.db import connection

from tests.factories import (
    EventFactory,
    InvoiceFactory,
    OrderFactory,
    OrderItemFactory,
)

# The files that take over a minute, slowest first. bin/test hands files to its workers in
# collection order (--no-loadscope-reorder), so these start first and the workers end
# together, instead of one running a long file alone at the end.
SLOWEST_FILES = [
    "tests/lake/test_maintain.py",
    "tests/lake/test_scenarios.py",
    "tests/lake/test_apply_s3.py",
    "tests/replication/test_capture.py",
    "tests/lake/test_apply.py",
    "tests/test_simulation.py",
    "tests/test_kills.py",
    "tests/test_readme.py",
    "tests/replication/test_capture_s3.py",
]


def pytest_collection_modifyitems(config, items):
    """The slowest files first (see above). Tests that start a JVM run only when asked for
    (`-m engines`, as make test-engines does): make test stays within its time on two cores."""
    rank = {path: place for place, path in enumerate(SLOWEST_FILES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))
    if "engines" in (config.getoption("markexpr") or ""):
        return
    skip = pytest.mark.skip(reason="starts Spark or Trino: run by `make test-engines`")
    for item in items:
        if "engines" in item.keywords:
            item.add_marker(skip)


# The browser tests' needs, and the one command that meets them (.ci/run runs it).
BROWSER_MISSING = "needs Debian's chromium and chromium-driver"
INSTALL_BROWSER = "apt-get install -y chromium chromium-driver"


def pytest_terminal_summary(terminalreporter):
    """Last words of a run: the tests that did not run because a browser is missing, and how
    to install it, so a skip is never silent."""
    skipped = [
        report
        for report in terminalreporter.stats.get("skipped", [])
        if BROWSER_MISSING in str(report.longrepr)
    ]
    if skipped:
        terminalreporter.write_line(
            f"{len(skipped)} browser tests did not run: Chromium is not installed. Install it "
            f"with `sudo {INSTALL_BROWSER}` (Debian, Ubuntu) and run make test again.",
            yellow=True,
            bold=True,
        )


@pytest.fixture
def order_item(db):
    return OrderItemFactory()


@pytest.fixture
def shop(db, order_item):
    """One row in every table, all of one tenant, linked the way real data is."""
    order = order_item.order
    purchase = EventFactory(
        customer=order.customer, event_type="purchase", order=order, product=order_item.product
    )
    invoice = InvoiceFactory(subscription__customer=order.customer)
    return {
        "tenant": order.tenant,
        "customer": order.customer,
        "product": order_item.product,
        "order": order,
        "orderitem": order_item,
        "event": purchase,
        "subscription": invoice.subscription,
        "invoice": invoice,
    }


@pytest.fixture
def other_tenant_order(db):
    return OrderFactory()


NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
SEED = 7


@contextlib.contextmanager
def replicated_shop(*, seed: int, scale: str = "0.03"):
    """A small seeded shop with the publication; slots left behind are dropped afterwards."""
    from core.replication.setup import drop_publication, setup_replication
    from core.seeding.seed import seed_all

    seed_all(scale=scale, seed=seed, now=NOW)
    with connection.cursor() as cursor:
        setup_replication(cursor, publication="dms_publication")
    yield
    with connection.cursor() as cursor:
        drop_publication(cursor, publication="dms_publication")
        cursor.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE NOT active"
        )


@pytest.fixture(scope="session", autouse=True)
def pipeline_registry(tmp_path_factory):
    """The captures and warehouses the tests make are recorded in a registry of the session's
    own, for this process and the commands it starts, not in the developer's .lakehouse/."""
    from django.conf import settings

    folder = tmp_path_factory.mktemp("lakehouse-state")
    saved = settings.LAKEHOUSE_STATE_DIR, os.environ.get("LAKEHOUSE_STATE_DIR")
    settings.LAKEHOUSE_STATE_DIR = folder
    os.environ["LAKEHOUSE_STATE_DIR"] = str(folder)
    yield folder
    settings.LAKEHOUSE_STATE_DIR = saved[0]
    if saved[1] is None:
        os.environ.pop("LAKEHOUSE_STATE_DIR", None)
    else:
        os.environ["LAKEHOUSE_STATE_DIR"] = saved[1]


@pytest.fixture(scope="module")
def seeded_world(django_db_setup, django_db_blocker):
    """A `seed_all --scale small` world, committed once per module for tests that only read it,
    and deleted after them."""
    from core.seeding.loading import delete_all
    from core.seeding.seed import seed_all

    with django_db_blocker.unblock():
        result = seed_all(scale="small", seed=SEED, now=NOW, clean=True)
        yield result
        with connection.cursor() as cursor:
            delete_all(cursor)


AWS_NAMES = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_PROFILE",
)


@pytest.fixture(scope="session")
def s3_store():
    """The real local S3 store (SeaweedFS), started once per session in a temporary folder and
    stopped by its pid at the end (or by the kernel, if the session dies first); the AWS_*
    settings of this process and of the commands it starts point at it."""
    from devstack.locals3 import ephemeral_store

    saved = {name: os.environ.get(name) for name in AWS_NAMES}
    with ephemeral_store() as store:
        for name in AWS_NAMES:
            os.environ.pop(name, None)
        os.environ.update(store.environment())
        try:
            yield store
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


@pytest.fixture
def s3_url(s3_store, request) -> str:
    """A prefix of the store's bucket of this test's own."""
    name = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:40]
    return f"s3://lakehouse/{name}-{uuid.uuid4().hex[:8]}"
