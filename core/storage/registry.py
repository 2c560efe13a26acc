"""The places the pipeline page shows: every capture `cdc_tail` has written, every warehouse
`lakehouse_apply` has built, and the last verdict of `lakehouse_verify` on each, recorded by
those commands as they run; and any listed in PIPELINE_LOCATIONS.

A JSON file beside the project (LAKEHOUSE_STATE_DIR, default `.lakehouse/pipeline.json`), not
a table: nothing is written into the source database, where DMS or Debezium would capture it.
Writers take an flock for the read-modify-write, and replace the file whole."""

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings

from core.storage import Location, location

REGISTRY_FILE = "pipeline.json"


def registry_path() -> Path:
    return Path(settings.LAKEHOUSE_STATE_DIR) / REGISTRY_FILE


def name_of(where: Location) -> str:
    """How a place is recorded: an s3:// URL, or an absolute path (the page may run elsewhere)."""
    return str(where.path.resolve()) if where.is_local else where.uri()


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")


def known() -> dict:
    """Captures and warehouses by name, each a dict of what was recorded (read without a lock:
    the file is replaced whole)."""
    try:
        data = json.loads(registry_path().read_text())
    except (FileNotFoundError, ValueError):
        data = {}
    data.setdefault("captures", {})
    data.setdefault("warehouses", {})
    for configured in settings.PIPELINE_LOCATIONS:
        kind = "warehouses" if configured.startswith("warehouse:") else "captures"
        name = name_of(location(configured.removeprefix("warehouse:").removeprefix("capture:")))
        data[kind].setdefault(name, {"configured": True})
    return data


@contextlib.contextmanager
def editing() -> Iterator[dict]:
    path = registry_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with (path.parent / (REGISTRY_FILE + ".lock")).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            data = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            data = {}
        data.setdefault("captures", {})
        data.setdefault("warehouses", {})
        yield data
        partial = path.with_name(f".{REGISTRY_FILE}.{os.getpid()}")
        partial.write_text(json.dumps(data, indent=1) + "\n")
        partial.replace(path)


def record_capture(where: Location, slot: str) -> None:
    with editing() as data:
        entry = data["captures"].setdefault(name_of(where), {})
        entry.update(slot=slot, last_run=now())


def record_warehouse(where: Location, table_format: str, capture: Location) -> None:
    with editing() as data:
        entry = data["warehouses"].setdefault(name_of(where), {})
        entry.update(format=table_format, capture=name_of(capture), last_apply=now())


def record_verdict(where: Location, *, against: str, same: bool, differing: list[str]) -> None:
    """The last check of a warehouse: against the source, or a manifest's checkpoint."""
    with editing() as data:
        entry = data["warehouses"].setdefault(name_of(where), {})
        entry["verdict"] = {"against": against, "same": same, "differing": differing, "at": now()}


def forget(where: Location) -> list[str]:
    """Take a place off the registry (both kinds, if it was both); what kinds it was."""
    name = name_of(where)
    with editing() as data:
        return [kind for kind in ("captures", "warehouses") if data[kind].pop(name, None)]


def configured(where: Location) -> bool:
    """Whether PIPELINE_LOCATIONS lists the place (the settings, not the registry, show it)."""
    return any(
        name_of(location(entry.removeprefix("warehouse:").removeprefix("capture:")))
        == name_of(where)
        for entry in settings.PIPELINE_LOCATIONS
    )
