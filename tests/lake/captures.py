"""Captures made once per test session and handed to each test as its own copy, with the
database put back as it was when the capture was made.

Making a capture (a seeded shop, its full load, rounds of simulated changes, each drained by
cdc_tail) takes seconds, and most lake tests start from the same one. The first test that
asks for a capture makes it for real and keeps a copy of its folder and of the core tables'
rows (COPY). Every later test gets: those rows COPYed back into its empty tables, the
publication, a new slot of the same name, and a copy of the folder whose record
(capture.json) says the slot was let go of where the new one starts, as cdc_tail itself
records it when it stops. So a test may go on changing the shop and draining into its copy,
exactly as after a capture of its own: the new slot holds every change made after the copy.
"""

import io
import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.db import connection

from core.capture.record import CAPTURE_FILE
from core.generation.rows import TABLE_ROWS
from core.replication.setup import drop_publication, setup_replication
from core.storage import Location, location

PUBLICATION = "dms_publication"


@dataclass
class Kept:
    folder: Path  # the capture as it was made (no test writes into it)
    rows: dict[str, bytes]  # each core table's rows, as COPY text


KEPT: dict[tuple, Kept] = {}
STORE = Path(tempfile.mkdtemp(prefix="lakehouse-test-captures-"))


def core_rows() -> dict[str, bytes]:
    rows = {}
    with connection.cursor() as cursor:
        for table in TABLE_ROWS:
            out = io.BytesIO()
            cursor.copy_expert(f"COPY {table} TO STDOUT", out)
            rows[table] = out.getvalue()
    return rows


def put_back(rows: dict[str, bytes]) -> None:
    """The rows into the (empty) core tables, parents first."""
    with connection.cursor() as cursor:
        for table in TABLE_ROWS:
            cursor.copy_expert(f"COPY {table} FROM STDIN", io.BytesIO(rows[table]))


def copy_files(source: Location, target: Location) -> None:
    for file in source.files():
        target.write(file.key, source.read(file.key)[0])


def capture_once(key: tuple, into: Path | str, slot: str, make: Callable) -> Path | str:
    """The capture `make(into)` makes (with slot `slot` and the publication) at `into`, a
    folder or an s3:// prefix: made now the first time for `key`, a copy of that one
    afterwards. The caller drops the slot and the publication when its test is done
    (`let_go`)."""
    kept = KEPT.get(key)
    where = location(into)
    if kept is None:
        make(into)
        folder = STORE / f"{len(KEPT)}"
        copy_files(where, location(folder))
        KEPT[key] = Kept(folder, core_rows())
        return into
    put_back(kept.rows)
    with connection.cursor() as cursor:
        setup_replication(cursor, publication=PUBLICATION)
        cursor.execute(
            "SELECT lsn::text FROM pg_create_logical_replication_slot(%s, 'test_decoding')",
            [slot],
        )
        (starts,) = cursor.fetchone()
    copy_files(location(kept.folder), where)
    record = json.loads(where.read(CAPTURE_FILE)[0])
    record["slot"] = slot
    record["released_lsn"] = starts  # cdc_tail let go of the slot here, and nobody read it since
    where.write(CAPTURE_FILE, (json.dumps(record, indent=2) + "\n").encode())
    return into


def let_go(slot: str) -> None:
    with connection.cursor() as cursor:
        drop_publication(cursor, publication=PUBLICATION)
        cursor.execute("SELECT pg_drop_replication_slot(%s)", [slot])
