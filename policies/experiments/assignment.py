"""Sticky assignment of a unit (shopper, session or event) to an experiment's arm.

The unit is hashed with a server secret (HMAC-SHA256, as shopper ids are): the same
unit always lands in the same arm of the same experiment, a different experiment
reshuffles units independently, and nobody without the secret can pick their arm.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from policies.keyed_hash import KeyedHash

__all__ = ["Arm", "ArmSplit", "POLICIES", "UnitHasher", "assign", "unit_bucket"]

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


class UnitHasher:
    """Units' points in [0, 1) under one secret (its HMAC prepared once: the rank path's cost)."""

    def __init__(self, keyed: KeyedHash):
        self._keyed = keyed

    def bucket(self, experiment_id: str, unit: str) -> float:
        """Return the unit's point in [0, 1) for this experiment (uniform over units)."""
        keyed = self._keyed.digest(f"{experiment_id}\x00{unit}".encode())
        return int.from_bytes(keyed[:8], "big") / float(1 << 64)


@dataclass(frozen=True, slots=True)
class ArmSplit:
    """An experiment's arms and the consecutive intervals of [0, 1) their shares cut, worked out once."""

    arms: tuple[Arm, ...]
    edges: tuple[float, ...]

    @classmethod
    def of(cls, arms: Sequence[Arm]) -> ArmSplit:
        total = sum(a.share for a in arms)
        return cls(tuple(arms), tuple(itertools.accumulate(a.share / total for a in arms)))

    def arm_at(self, point: float) -> Arm:
        """Return the arm whose interval holds `point`."""
        index = bisect.bisect_right(self.edges, point)
        return self.arms[min(index, len(self.arms) - 1)]


def unit_bucket(secret: bytes, experiment_id: str, unit: str) -> float:
    """Return the unit's point in [0, 1) for this experiment (uniform over units)."""
    return UnitHasher(KeyedHash(secret)).bucket(experiment_id, unit)


def assign(secret: bytes, experiment_id: str, unit: str, arms: Sequence[Arm]) -> Arm:
    """Return the arm this unit belongs to: shares cut [0, 1) into consecutive intervals.

    The rank path keeps a UnitHasher and each experiment's ArmSplit instead of making
    them per request (service/experiment_arms.py); the answer is the same.

    >>> arms = [Arm("a", "model", 0.5), Arm("b", "no-offer", 0.5)]
    >>> assign(b"k", "e1", "shopper-1", arms) == assign(b"k", "e1", "shopper-1", arms)
    True
    >>> split, hasher = ArmSplit.of(arms), UnitHasher(KeyedHash(b"k"))
    >>> split.arm_at(hasher.bucket("e1", "shopper-1")) == assign(b"k", "e1", "shopper-1", arms)
    True
    """
    return ArmSplit.of(arms).arm_at(unit_bucket(secret, experiment_id, unit))
