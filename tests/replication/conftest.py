import pytest
from django.db import connection

from core.replication.setup import drop_publication, setup_replication
from core.seeding import seed_all
from tests.conftest import NOW


@pytest.fixture
def world():
    """A small seeded shop with the publication; slots left behind are dropped afterwards."""
    seed_all(scale="0.03", seed=31, now=NOW)
    with connection.cursor() as cursor:
        setup_replication(cursor, publication="dms_publication")
    yield
    with connection.cursor() as cursor:
        drop_publication(cursor, publication="dms_publication")
        cursor.execute(
            "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE NOT active"
        )
