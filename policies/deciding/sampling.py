"""Sample offers from a Ranking, one slot at a time, reproducibly per event.

Each slot is drawn from the ranking's distribution restricted to the actions not
yet chosen and renormalised; the probability logged for a slot is that
conditional probability, so every slot carries its own exact propensity. The
distribution itself (boosts, exploration share, promotions' shares) is built in
policies/deciding/mixture.py; `served` and its steps are re-exported from here.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import math
from collections.abc import Mapping, Sequence

import numpy as np

from policies.base import Ranking, SlotChoice
from policies.deciding.mixture import boost, mix_shares, mix_uniform, served

__all__ = [
    "baseline_choice",
    "boost",
    "choose",
    "conditionals",
    "diverse_bans",
    "first_slot",
    "mix_shares",
    "mix_uniform",
    "seed_for",
    "served",
    "uniform",
]


def seed_for(event_id: str) -> int:
    """Return a 64-bit seed derived from the event id, so a replay draws the same offers."""
    return int.from_bytes(hashlib.sha256(event_id.encode()).digest()[:8], "big")


def choose(
    ranking: Ranking,
    slots: int,
    seed: int,
    *,
    slot_excluded: Sequence[frozenset[str]] = (),
    category_of: Mapping[str, str] | None = None,
    max_per_category: int | None = None,
) -> tuple[SlotChoice, ...]:
    """Draw up to `slots` distinct actions; fewer when fewer have non-zero probability.

    ``slot_excluded[k]`` names actions slot k may not show (Personalizer's per-slot
    excluded actions); that slot's draw and its logged probability leave them out.
    Drawing stops at the first slot with nothing left to show.

    With `max_per_category`, a slot may not show a candidate of a category the slots
    above already show that often: a per-slot exclusion decided inside the draw, so
    each slot's logged probability is the one it was drawn with (`diverse_bans`
    returns them, for the log).

    Examples
    --------
    >>> r = Ranking(("a", "b"), np.array([1.0, 0.0]))
    >>> choose(r, slots=2, seed=1)
    (SlotChoice(slot=0, action_id='a', probability=1.0),)
    """
    # Plain floats, not numpy: with tens of actions numpy's per-call overhead was most
    # of the sampling time on the rank path.
    remaining = [float(p) for p in ranking.probabilities]
    choices: list[SlotChoice] = []
    for slot in range(slots):
        banned = _banned(slot_excluded, slot)
        if max_per_category is not None and category_of:
            banned = banned | _full(
                ranking.action_ids, [c.action_id for c in choices], category_of, max_per_category
            )
        conditional = _conditional(ranking.action_ids, remaining, banned)
        if conditional is None:
            break
        index = _draw(conditional, uniform(seed, slot))
        choices.append(SlotChoice(slot, ranking.action_ids[index], conditional[index]))
        remaining[index] = 0.0
    return tuple(choices)


def diverse_bans(
    action_ids: Sequence[str],
    slots: int,
    chosen: Sequence[str],
    slot_excluded: Sequence[frozenset[str]],
    category_of: Mapping[str, str],
    max_per_category: int,
) -> tuple[frozenset[str], ...]:
    """Return, per slot, what `choose` banned there along the path it drew (the log keeps these).

    Given the offers shown above a slot the bans are fixed, so `conditionals` replaying
    the logged bans reproduces each slot's probability exactly.
    """
    return tuple(
        _banned(slot_excluded, slot) | _full(action_ids, chosen[:slot], category_of, max_per_category)
        for slot in range(slots)
    )


def _full(
    action_ids: Sequence[str], shown: Sequence[str], category_of: Mapping[str, str], cap: int
) -> frozenset[str]:
    """The candidates whose category the slots above already show `cap` times."""
    if not shown:
        return frozenset()
    counts: dict[str, int] = {}
    for action_id in shown:
        category = category_of.get(action_id)
        if category is not None:
            counts[category] = counts.get(category, 0) + 1
    full = {c for c, n in counts.items() if n >= cap}
    return frozenset(a for a in action_ids if category_of.get(a) in full) if full else frozenset()


def conditionals(
    ranking: Ranking, chosen: Sequence[str], *, slot_excluded: Sequence[frozenset[str]] = ()
) -> list[list[float]]:
    """Return, per slot of `chosen`, the distribution `choose` drew that slot from.

    The replay of a logged decision: given the offers shown above each slot, the
    same arithmetic as `choose`, so a replayed propensity equals the logged one bit
    for bit. A slot with no probability left gets all zeros (nothing would be shown).

    >>> conditionals(Ranking(("a", "b", "c"), np.array([0.5, 0.25, 0.25])), ["a", "b"])
    [[0.5, 0.25, 0.25], [0.0, 0.5, 0.5]]
    """
    remaining = [float(p) for p in ranking.probabilities]
    position = {action_id: index for index, action_id in enumerate(ranking.action_ids)}
    rows = []
    for slot, action_id in enumerate(chosen):
        conditional = _conditional(ranking.action_ids, remaining, _banned(slot_excluded, slot))
        rows.append(conditional if conditional is not None else [0.0] * len(remaining))
        remaining[position[action_id]] = 0.0
    return rows


def first_slot(ranking: Ranking, slot_excluded: Sequence[frozenset[str]] = ()) -> Ranking:
    """Return the distribution `choose` draws the first slot from (all zeros: it may show nothing).

    This is what the log keeps as a decision's distribution: the ranking renormalised
    to what the first slot may show, by the same arithmetic as `choose`.
    """
    remaining = [float(p) for p in ranking.probabilities]
    conditional = _conditional(ranking.action_ids, remaining, _banned(slot_excluded, 0))
    return Ranking(ranking.action_ids, np.array(conditional or [0.0] * len(remaining), dtype=np.float64))


def baseline_choice(
    action_ids: Sequence[str], unavailable: frozenset[str] | set[str], wanted: str | None
) -> str | None:
    """Return what the storefront shows in a slot without xsell: `wanted` if it may be
    shown there, else the first candidate that may (None: nothing may).

    `unavailable` holds the actions excluded from the decision or from this slot and
    those shown in the slots above it.
    """
    if wanted is not None and wanted in action_ids and wanted not in unavailable:
        return wanted
    return next((a for a in action_ids if a not in unavailable), None)


def _banned(slot_excluded: Sequence[frozenset[str]], slot: int) -> frozenset[str]:
    return slot_excluded[slot] if slot < len(slot_excluded) else frozenset()


def _conditional(
    action_ids: Sequence[str], remaining: list[float], banned: frozenset[str]
) -> list[float] | None:
    """Renormalise what is left to the actions this slot may show; None if nothing is."""
    allowed = (
        [0.0 if a in banned else p for a, p in zip(action_ids, remaining, strict=True)]
        if banned
        else remaining
    )
    total = math.fsum(allowed)
    if total <= 0:
        return None
    return [p / total for p in allowed]


_MASK = (1 << 64) - 1


def uniform(seed: int, slot: int) -> float:
    """Return the uniform draw in [0, 1) for one slot of the event seeded by `seed`.

    SplitMix64 (Steele, Lea and Flood, 2014) of seed + slot: statistically sound for
    this use and a handful of integer operations, where building a numpy Generator
    per request cost more than the rest of sampling.

    >>> uniform(7, 0) == uniform(7, 0) != uniform(7, 1)
    True
    """
    z = (seed + (slot + 1) * 0x9E3779B97F4A7C15) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    z ^= z >> 31
    return (z >> 11) / float(1 << 53)


def _draw(probabilities: list[float], u: float) -> int:
    cumulative = list(itertools.accumulate(probabilities))
    index = bisect.bisect_right(cumulative, u * cumulative[-1])
    # Float rounding can push u past the last cumulative value; never pick a zero.
    index = min(index, len(probabilities) - 1)
    while probabilities[index] <= 0:
        index -= 1
    return index
