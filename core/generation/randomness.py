"""Randomness derived from a seed and a record's key: no row depends on the order of work."""

import bisect
import itertools
import math
import random
import uuid
from collections.abc import Sequence


def derive_rng(seed: int, *key: object) -> random.Random:
    """A generator for one record (or one stage of one record), independent of every other."""
    return random.Random(":".join(map(str, (seed, *key))))


_VERSION_4 = 4 << 76 | 0x8000 << 48
_NOT_VERSION_BITS = ~(0xF000 << 64 | 0xC000 << 48)
_UNKNOWN_SAFETY = uuid.SafeUUID.unknown


def new_uuid(rng: random.Random) -> uuid.UUID:
    """A version-4 UUID from `rng`. Equal to `uuid.UUID(int=..., version=4)`, built without its
    argument checks: it is made once per generated row, and those checks were the hot spot."""
    value = uuid.UUID.__new__(uuid.UUID)
    object.__setattr__(value, "int", rng.getrandbits(128) & _NOT_VERSION_BITS | _VERSION_4)
    object.__setattr__(value, "is_safe", _UNKNOWN_SAFETY)
    return value


def poisson(rng: random.Random, mean: float) -> int:
    """Knuth's multiplication method for small means; a rounded normal beyond."""
    if mean <= 0:
        return 0
    if mean > 50:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit = math.exp(-mean)
    count, product = 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


class WeightedChoice:
    """Repeated weighted draws from a fixed population, O(log n) each."""

    def __init__(self, items: Sequence, weights: Sequence[float]):
        if len(items) != len(weights) or not items:
            raise ValueError("a weighted choice needs as many weights as items, and some items")
        self.items = list(items)
        self.cumulative = list(itertools.accumulate(weights))
        self.total = self.cumulative[-1]

    def __call__(self, rng: random.Random):
        return self.items[bisect.bisect_right(self.cumulative, rng.random() * self.total)]

    @classmethod
    def from_mapping(cls, weights: dict) -> "WeightedChoice":
        return cls(list(weights), list(weights.values()))
