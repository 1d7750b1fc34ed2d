"""Sticky assignment of a unit (shopper, session or event) to an experiment's arm.

The unit is hashed with a server secret (HMAC-SHA256, as shopper ids are): the same
unit always lands in the same arm of the same experiment, a different experiment
reshuffles units independently, and nobody without the secret can pick their arm.
"""

from __future__ import annotations

import bisect
import hashlib
import hmac
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Arm", "POLICIES", "assign", "unit_bucket"]

# What an arm may serve: the learning model, one frozen model version, the most popular
# candidates (deterministically), or nothing at all (the holdout).
POLICIES = ("model", "frozen", "most-popular", "no-offer")


@dataclass(frozen=True, slots=True)
class Arm:
    """One arm: its name, the policy it serves and its share of the traffic."""

    name: str
    policy: str  # one of POLICIES
    share: float
    version: str | None = None  # the frozen model version, for policy "frozen"


def unit_bucket(secret: bytes, experiment_id: str, unit: str) -> float:
    """Return the unit's point in [0, 1) for this experiment (uniform over units)."""
    digest = hmac.new(secret, f"{experiment_id}\x00{unit}".encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") / float(1 << 64)


def assign(secret: bytes, experiment_id: str, unit: str, arms: Sequence[Arm]) -> Arm:
    """Return the arm this unit belongs to: shares cut [0, 1) into consecutive intervals.

    >>> arms = [Arm("a", "model", 0.5), Arm("b", "no-offer", 0.5)]
    >>> assign(b"k", "e1", "shopper-1", arms) == assign(b"k", "e1", "shopper-1", arms)
    True
    """
    total = sum(a.share for a in arms)
    edges = list(itertools.accumulate(a.share / total for a in arms))
    index = bisect.bisect_right(edges, unit_bucket(secret, experiment_id, unit))
    return arms[min(index, len(arms) - 1)]
