"""What the rollups count in a row: feedback delay buckets, hashed context features,
explored first offers, offer categories. Plain functions of a row's values, no SQL."""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from typing import Any

import orjson

__all__ = [
    "DELAY_EDGES_SECONDS",
    "FEATURE_BUCKETS",
    "POSITIVE_SIGNALS",
    "categories",
    "delay_bucket",
    "explored",
    "feature_tokens",
    "hashed",
]

# A feedback delay falls in the first bucket whose edge it does not exceed; the last
# bucket (index len(edges)) holds everything longer.
DELAY_EDGES_SECONDS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0)
FEATURE_BUCKETS = 32
MAX_NAMESPACES = 16  # per decision: a storefront inventing namespaces cannot grow the table
POSITIVE_SIGNALS = frozenset({"click", "save", "add_to_cart", "purchase"})


def delay_bucket(delay_seconds: float) -> int:
    """Return the histogram bucket of a feedback delay (see DELAY_EDGES_SECONDS)."""
    for index, edge in enumerate(DELAY_EDGES_SECONDS):
        if delay_seconds <= edge:
            return index
    return len(DELAY_EDGES_SECONDS)


def feature_tokens(context: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """Return (namespace, feature name, token) for each feature of a context.

    Strings, booleans and list items become ``name=value``; numbers fall into
    power-of-two bins (``name~b``), so a shift in a price is seen without one bucket
    per price.
    """
    found = []
    for namespace in sorted(context)[:MAX_NAMESPACES]:
        features = context[namespace]
        if not isinstance(features, Mapping):
            continue
        for name, value in features.items():
            values = value if isinstance(value, list) else [value]
            for item in values:
                if isinstance(item, bool | str):
                    found.append((namespace, name, f"{name}={item}"))
                elif isinstance(item, int | float) and math.isfinite(item):
                    magnitude = int(math.log2(abs(item) + 1.0))
                    found.append((namespace, name, f"{name}~{'-' if item < 0 else ''}{magnitude}"))
    return found


def explored(probabilities: str, choices: str) -> int:
    """1 if the first offer was drawn below the most likely one (exploration), else 0."""
    chosen = orjson.loads(choices)
    if not chosen:
        return 0
    top = max(orjson.loads(probabilities), default=0.0)
    return int(chosen[0]["probability"] < top - 1e-12)


def categories(actions: str | bytes) -> dict[str, str]:
    """The ``offer`` namespace's category of each action (/v1/offers sets it; '' if none)."""
    found = {}
    for action in orjson.loads(actions):
        offer = (action.get("features") or {}).get("offer")
        category = offer.get("category") if isinstance(offer, Mapping) else None
        found[action["id"]] = category if isinstance(category, str) else ""
    return found


def hashed(context: Mapping[str, Any]) -> list[tuple[str, str, int]]:
    """(namespace, feature name, bucket) of each feature token of a context."""
    return [
        (namespace, name, zlib.crc32(token.encode()) % FEATURE_BUCKETS)
        for namespace, name, token in feature_tokens(context)
    ]
