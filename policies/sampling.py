"""Sample offers from a Ranking, one slot at a time, reproducibly per event.

Each slot is drawn from the ranking's distribution restricted to the actions not
yet chosen and renormalised; the probability logged for a slot is that
conditional probability, so every slot carries its own exact propensity.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import math

import numpy as np

from policies.base import Ranking, SlotChoice

__all__ = ["choose", "seed_for"]


def seed_for(event_id: str) -> int:
    """Return a 64-bit seed derived from the event id, so a replay draws the same offers."""
    return int.from_bytes(hashlib.sha256(event_id.encode()).digest()[:8], "big")


def choose(ranking: Ranking, slots: int, seed: int) -> tuple[SlotChoice, ...]:
    """Draw up to `slots` distinct actions; fewer when fewer have non-zero probability.

    Examples
    --------
    >>> r = Ranking(("a", "b"), np.array([1.0, 0.0]))
    >>> choose(r, slots=2, seed=1)
    (SlotChoice(slot=0, action_id='a', probability=1.0),)
    """
    rng = np.random.Generator(np.random.PCG64(seed))
    # Plain floats, not numpy: with tens of actions numpy's per-call overhead was most
    # of the sampling time on the rank path.
    remaining = [float(p) for p in ranking.probabilities]
    choices: list[SlotChoice] = []
    for slot in range(slots):
        total = math.fsum(remaining)
        if total <= 0:
            break
        conditional = [p / total for p in remaining]
        index = _draw(conditional, float(rng.random()))
        choices.append(SlotChoice(slot, ranking.action_ids[index], conditional[index]))
        remaining[index] = 0.0
    return tuple(choices)


def _draw(probabilities: list[float], u: float) -> int:
    cumulative = list(itertools.accumulate(probabilities))
    index = bisect.bisect_right(cumulative, u * cumulative[-1])
    # Float rounding can push u past the last cumulative value; never pick a zero.
    index = min(index, len(probabilities) - 1)
    while probabilities[index] <= 0:
        index -= 1
    return index
