"""Delivery chaos: a capture folder copied the way S3 event notifications deliver it at worst,
at least once and in no order, one round at a time, so that an apply run after each round
meets files out of order, twice, and late.

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
from pathlib import Path

from core.lake.capture_files import hidden
from core.replication import SCHEMA
from core.replication.folder import CAPTURE_FILE

STATE_FILE = ".chaos.json"
PARTIAL = ".partial"
SHARE = 0.35  # of the files waiting, delivered per round
AGAIN = 0.2  # of the files delivered before, delivered again per round
UNFINISHED = 0.25  # of a round's new files, left under their temporary name until the next


class ChaosError(Exception):
    """One line for the user."""


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


def capture_files(source: Path) -> list[str]:
    folder = source / SCHEMA
    files = (
        [p for p in folder.rglob("*") if p.is_file() and not hidden(p)] if folder.exists() else []
    )
    return sorted(str(path.relative_to(source)) for path in files)


def temporary(path: Path) -> Path:
    return path.with_name("." + path.name + PARTIAL)


def deliver_round(source: Path, dest: Path, seed: int) -> Round:
    if not (source / CAPTURE_FILE).exists():
        raise ChaosError(f"{source} is not a capture (no {CAPTURE_FILE}): give cdc_tail's --output")
    if dest.resolve() == source.resolve():
        raise ChaosError("the destination must be another folder than the capture")
    state_path = dest / STATE_FILE
    state = (
        json.loads(state_path.read_text())
        if state_path.exists()
        else {"seed": seed, "round": 0, "delivered": [], "unfinished": []}
    )
    if state["seed"] != seed:
        raise ChaosError(
            f"{dest} was delivered to with --seed {state['seed']}: use it, or a new folder"
        )
    rng = random.Random(f"{seed}:{state['round']}")
    for name in state["unfinished"]:  # the uploads in progress finish
        temporary(dest / name).rename(dest / name)
    state["delivered"] += state["unfinished"]
    delivered = set(state["delivered"])
    waiting = [name for name in capture_files(source) if name not in delivered]
    chosen = rng.sample(waiting, max(1, round(len(waiting) * SHARE))) if waiting else []
    again = rng.sample(sorted(delivered), round(len(delivered) * AGAIN))
    unfinished = [name for name in chosen if rng.random() < UNFINISHED]
    dest.mkdir(parents=True, exist_ok=True)
    for name in (CAPTURE_FILE, "manifest.json"):
        if (source / name).exists():
            shutil.copy2(source / name, dest / name)
    for name in chosen + again:
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / name, temporary(target) if name in unfinished else target)
    state["delivered"] += [name for name in chosen if name not in unfinished]
    state["unfinished"] = unfinished
    state["round"] += 1
    state_path.write_text(json.dumps(state))
    return Round(
        number=state["round"],
        delivered=len(chosen) - len(unfinished),
        again=len(again),
        unfinished=len(unfinished),
        waiting=len(waiting) - len(chosen),
    )
