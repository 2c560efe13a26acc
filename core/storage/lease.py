"""One writer per S3 location, by a lease object that S3's conditional PUTs guard."""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from pathlib import Path

from core.errors import StorageError, VersionConflict
from core.storage.location import Location, Lock

LEASE_FILE = ".lease"


class S3Lease(Lock):
    """One writer per S3 location, enforced by S3: a lease object taken with a conditional PUT
    (`If-None-Match: *`) and renewed with `If-Match` on its last version, before it runs out.
    A lease that ran out, or whose holder was a process of this machine that has died, may be
    taken over (again with `If-Match`, so two newcomers cannot both win). Whoever loses its
    lease learns so at its next renewal, and stops."""

    TTL = 30.0  # seconds a lease lasts without renewal
    RENEW_AFTER = 10.0

    def __init__(self, location: Location, what: str):
        self.location = location
        self.what = what
        self.owner = uuid.uuid4().hex
        self.version: str | None = None
        self.renewed = 0.0
        self.version = self._take()

    def _record(self) -> bytes:
        return json.dumps(
            {
                "owner": self.owner,
                "holder": self.what,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "expires": time.time() + self.TTL,
            }
        ).encode()

    def _take(self) -> str:
        location = self.location
        try:
            version = location.write_if(LEASE_FILE, self._record(), None)
        except VersionConflict:
            found = location.read_json(LEASE_FILE)
            if found is None:  # released meanwhile: try once more
                version = location.write_if(LEASE_FILE, self._record(), None)
            else:
                holder, held = found
                if not self._can_take_over(holder):
                    until = time.strftime("%H:%M:%S", time.localtime(holder["expires"]))
                    raise StorageError(
                        f"another {holder.get('holder', 'process')} (pid {holder.get('pid')} on "
                        f"{holder.get('host')}) is writing into {location.url}: one at a time "
                        f"(its lease runs until {until} unless renewed)"
                    ) from None
                try:
                    version = location.write_if(LEASE_FILE, self._record(), held)
                except VersionConflict:
                    raise StorageError(
                        f"another process took {location.url} at the same moment: one at a time"
                    ) from None
        self.renewed = time.monotonic()
        return version

    @staticmethod
    def _can_take_over(holder: dict) -> bool:
        if holder.get("expires", 0) < time.time():
            return True
        if holder.get("host") != socket.gethostname():
            return False
        pid = holder.get("pid")
        return not isinstance(pid, int) or not Path(f"/proc/{pid}").exists()

    def keep(self) -> None:
        if time.monotonic() - self.renewed < self.RENEW_AFTER:
            return
        try:
            self.version = self.location.write_if(LEASE_FILE, self._record(), self.version)
        except VersionConflict:
            raise StorageError(
                f"lost the lease on {self.location.url} to another process: stopping (nothing "
                "past the last recorded batch counts)"
            ) from None
        self.renewed = time.monotonic()

    def release(self) -> None:
        found = self.location.read_json(LEASE_FILE)
        if found is not None and found[0].get("owner") == self.owner:
            self.location.delete([LEASE_FILE])
