"""Realistic values drawn once per seed with Faker, then sampled cheaply on the hot path."""

import random
import re
import unicodedata
from dataclasses import dataclass
from functools import cache

from faker import Faker

from core.generation.randomness import WeightedChoice

# Where customers live, and how often.
LOCALES = {
    "en_US": ("US", 0.58),
    "en_GB": ("GB", 0.12),
    "de_DE": ("DE", 0.1),
    "fr_FR": ("FR", 0.08),
    "en_CA": ("CA", 0.06),
    "es_ES": ("ES", 0.06),
}
NAMES_PER_LOCALE = 300
PLACES_PER_LOCALE = 150

EMAIL_DOMAINS = WeightedChoice.from_mapping(
    {
        "gmail.com": 0.42,
        "yahoo.com": 0.1,
        "outlook.com": 0.12,
        "icloud.com": 0.1,
        "hotmail.com": 0.06,
        "proton.me": 0.03,
        "aol.com": 0.02,
        "example.com": 0.15,
    }
)

PRODUCT_WORDS = {
    "Electronics": (
        ("Wireless", "Smart", "Portable", "4K", "Noise-Cancelling", "Compact", "Pro", "Ultra"),
        ("Headphones", "Speaker", "Smartwatch", "Tablet", "Monitor", "Keyboard", "Camera",
         "Charger", "Router", "Earbuds", "Laptop", "Drone"),
    ),
    "Clothing": (
        ("Organic", "Slim-Fit", "Classic", "Waterproof", "Merino", "Linen", "Vintage", "Relaxed"),
        ("T-Shirt", "Jeans", "Jacket", "Hoodie", "Dress", "Sneakers", "Scarf", "Chinos",
         "Sweater", "Raincoat", "Boots", "Cap"),
    ),
    "Home": (
        ("Ceramic", "Bamboo", "Cast-Iron", "Minimalist", "Handmade", "Stainless", "Oak", "Cosy"),
        ("Mug", "Lamp", "Pan", "Cushion", "Rug", "Vase", "Knife Set", "Blanket", "Shelf",
         "Kettle", "Planter", "Candle"),
    ),
    "Books": (
        ("The Quiet", "A Brief History of", "The Last", "Notes on", "The Art of", "Beyond the",
         "Letters from", "The Secret"),
        ("Garden", "River", "Empire", "Algorithms", "Cooking", "Ocean", "Mountains", "Time",
         "Memory", "City", "Stars", "Lighthouse"),
    ),
    "Sports": (
        ("Carbon", "Lightweight", "Trail", "Performance", "Foldable", "Adjustable", "Grip",
         "Endurance"),
        ("Running Shoes", "Yoga Mat", "Dumbbells", "Bike Helmet", "Tennis Racket", "Backpack",
         "Water Bottle", "Jump Rope", "Tent", "Football", "Kettlebell", "Gloves"),
    ),
}  # fmt: skip

SEARCH_TERMS = {
    category: tuple(noun.lower() for noun in nouns)
    for category, (_, nouns) in PRODUCT_WORDS.items()
}

INDUSTRIES = {
    # industry: category weights of its catalogue
    "Consumer electronics": {"Electronics": 6, "Home": 1, "Sports": 1, "Books": 1, "Clothing": 1},
    "Fashion retail": {"Clothing": 6, "Sports": 2, "Home": 1, "Books": 0.5, "Electronics": 0.5},
    "Home and living": {"Home": 6, "Electronics": 1.5, "Books": 1, "Clothing": 1, "Sports": 0.5},
    "Outdoor and sports": {"Sports": 6, "Clothing": 2, "Electronics": 1, "Home": 0.5, "Books": 0.5},
    "Books and media": {"Books": 6, "Electronics": 1, "Home": 1, "Clothing": 0.5, "Sports": 0.5},
    "General merchandise": {"Electronics": 2, "Clothing": 2, "Home": 2, "Books": 2, "Sports": 2},
}


def ascii_slug(text: str) -> str:
    """Lower-case ASCII letters and digits only: 'Zoë Müller' -> 'zoemuller'."""
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", plain.lower())


@dataclass(frozen=True)
class Place:
    city: str
    region: str
    postal_code: str
    country: str


@dataclass(frozen=True)
class LocalePool:
    country: str
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    places: tuple[Place, ...]


@dataclass(frozen=True)
class Pools:
    locales: WeightedChoice  # of LocalePool
    brands: tuple[str, ...]
    company_names: tuple[str, ...]


@cache
def pools_for(seed: int) -> Pools:
    """Everything Faker contributes, drawn once for a seed (about 0.1 s)."""
    locale_pools, weights = [], []
    for locale, (country, weight) in LOCALES.items():
        fake = Faker(locale)
        fake.seed_instance(f"{seed}:{locale}")
        region = getattr(fake, "administrative_unit", None) or (lambda: "")
        places = tuple(
            Place(fake.city()[:80], region()[:80], fake.postcode()[:16], country)
            for _ in range(PLACES_PER_LOCALE)
        )
        locale_pools.append(
            LocalePool(
                country=country,
                first_names=tuple(fake.first_name()[:80] for _ in range(NAMES_PER_LOCALE)),
                last_names=tuple(fake.last_name()[:80] for _ in range(NAMES_PER_LOCALE)),
                places=places,
            )
        )
        weights.append(weight)
    fake = Faker("en_US")
    fake.seed_instance(f"{seed}:companies")
    brands = tuple(sorted({fake.last_name() for _ in range(200)}))[:60]
    names = tuple(dict.fromkeys(fake.company() for _ in range(400)))
    return Pools(locales=WeightedChoice(locale_pools, weights), brands=brands, company_names=names)


def pick(rng: random.Random, values: tuple):
    return values[int(rng.random() * len(values))]
