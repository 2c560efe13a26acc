"""The bookkeeping each commit of ours carries: the capture files it applied (FILES_KEY) and the
capture they came from (CAPTURE_KEY); a maintenance commit also records every file applied
until then (TAKEN_KEY), so that the older commits can be expired without the table forgetting
them."""

import base64
import json
import zlib
from collections.abc import Iterable

FILES_KEY = "lakehouse.files"
CAPTURE_KEY = "lakehouse.capture"
TAKEN_KEY = "lakehouse.taken"  # every file applied until this commit, compressed


def packed_files(names: Iterable[str]) -> str:
    """A set of file names, as few bytes as they compress to (they share long prefixes)."""
    text = json.dumps(sorted(names)).encode()
    return base64.b64encode(zlib.compress(text, 9)).decode()


def unpacked_files(packed: str) -> set[str]:
    return set(json.loads(zlib.decompress(base64.b64decode(packed))))


def last_file_recorded(files_values: list[str]) -> str | None:
    """The last capture file that commits recorded (each commit's FILES_KEY, oldest first)."""
    for value in reversed(files_values):
        recorded = json.loads(value)
        if recorded:
            return recorded[-1]
    return None


class Taken:
    """The files a table has taken, gathered from its commits newest first: each commit's own,
    until one that records all before it."""

    def __init__(self):
        self.files: set[str] = set()
        self.capture: str | None = None
        self.complete = False

    def add(self, properties: dict) -> None:
        """Take in one commit's properties; `complete` once a commit recorded everything."""
        if FILES_KEY in properties:
            self.files.update(json.loads(properties[FILES_KEY]))
            self.capture = self.capture or properties.get(CAPTURE_KEY)
        if TAKEN_KEY in properties:
            self.files.update(unpacked_files(properties[TAKEN_KEY]))
            self.capture = self.capture or properties.get(CAPTURE_KEY)
            self.complete = True
