"""Delivery chaos: a capture (a folder, or an S3 prefix) copied the way S3 event notifications
deliver it at worst, at least once and in no order, one round at a time, so that an apply run
after each round meets files out of order, twice, and late. Either side may be on disk or S3.

A round delivers, in shuffled order, a random part of the files not delivered yet (the rest
are delayed), some of them only under a hidden temporary name (`.NAME.partial`, as an upload
in progress) that becomes the real name in the next round, and delivers again some files
delivered before. capture.json and manifest.json are copied every round. The rounds are a
function of the seed and the source: the same seed gives the same rounds.
"""

import json
import random
import shutil
from dataclasses import dataclass

from core.capture.reader import hidden
from core.capture.record import CAPTURE_FILE
from core.errors import ChaosError
from core.source.catalog import SCHEMA
from core.storage import Location

STATE_FILE = ".chaos.json"
PARTIAL = ".partial"
SHARE = 0.35  # of the files waiting, delivered per round
AGAIN = 0.2  # of the files delivered before, delivered again per round
UNFINISHED = 0.25  # of a round's new files, left under their temporary name until the next


@dataclass
class Round:
    number: int
    delivered: int  # files that arrived this round under their real name (first time)
    again: int  # files delivered again
    unfinished: int  # under a temporary name until the next round
    waiting: int  # not delivered yet

    @property
    def done(self) -> bool:
        return self.waiting == 0 and self.unfinished == 0


def capture_files(source: Location) -> list[str]:
    return [file.key for file in source.files(SCHEMA) if not hidden(file.name)]


def temporary(key: str) -> str:
    folder, _, name = key.rpartition("/")
    return f"{folder}/.{name}{PARTIAL}"


def copy(source: Location, dest: Location, key: str, into: str) -> None:
    """One file copied whole, through a local spool file (memory stays flat)."""
    with dest.spooling() as spool:
        spooled = spool / "chaos.partial"
        with source.open_input(key) as reading, spooled.open("wb") as writing:
            shutil.copyfileobj(reading, writing, 1 << 20)
        dest.publish(spooled, into)


def deliver_round(source: Location, dest: Location, seed: int) -> Round:
    source.check()
    if not source.exists(CAPTURE_FILE):
        raise ChaosError(f"{source} is not a capture (no {CAPTURE_FILE}): give cdc_tail's --output")
    if source.same_as(dest):
        raise ChaosError("the destination must be another folder than the capture")
    dest.check()
    found = dest.read_json(STATE_FILE)
    state = found[0] if found else {"seed": seed, "round": 0, "delivered": [], "unfinished": []}
    if state["seed"] != seed:
        raise ChaosError(
            f"{dest} was delivered to with --seed {state['seed']}: use it, or a new folder"
        )
    rng = random.Random(f"{seed}:{state['round']}")
    for name in state["unfinished"]:  # the uploads in progress finish
        copy(dest, dest, temporary(name), name)
        dest.delete([temporary(name)])
    state["delivered"] += state["unfinished"]
    delivered = set(state["delivered"])
    waiting = [name for name in capture_files(source) if name not in delivered]
    chosen = rng.sample(waiting, max(1, round(len(waiting) * SHARE))) if waiting else []
    again = rng.sample(sorted(delivered), round(len(delivered) * AGAIN))
    unfinished = [name for name in chosen if rng.random() < UNFINISHED]
    for name in (CAPTURE_FILE, "manifest.json"):
        if source.exists(name):
            copy(source, dest, name, name)
    for name in chosen + again:
        copy(source, dest, name, temporary(name) if name in unfinished else name)
    state["delivered"] += [name for name in chosen if name not in unfinished]
    state["unfinished"] = unfinished
    state["round"] += 1
    dest.write(STATE_FILE, json.dumps(state).encode())
    return Round(
        number=state["round"],
        delivered=len(chosen) - len(unfinished),
        again=len(again),
        unfinished=len(unfinished),
        waiting=len(waiting) - len(chosen),
    )
