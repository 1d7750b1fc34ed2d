"""Promotions: boosts, campaigns' guaranteed shares and caps, as operator rules (#15).

A boost multiplies a product's probability (then renormalises); a guaranteed share is
reached by **mixing**: with probability epsilon the first slot is drawn uniformly from
the campaign's products that may be shown, else from the policy, and epsilon follows
the share the campaign has had so far in its period. Both change the served
distribution in the open: the exact mixture is what is sampled and logged
(``LoggedEvent.mixing``), so every propensity stays the one served and `xsell evaluate`
replays it (policies/deciding/sampling.py ``served``). A cap only removes: once a
campaign's impressions in the period reach it, its products are excluded.

An **impression** of a campaign is a decision that showed one of its products; a
decision is **eligible** for it when one of its products was a candidate the filters
and other rules allowed. Its share is impressions / eligible decisions in the period.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from policies.base import Ranking

__all__ = [
    "Boost",
    "Campaign",
    "Tally",
    "Target",
    "boosted_trace",
    "mixed_trace",
    "required_rate",
    "shares_for",
    "shares_of",
]


@dataclass(frozen=True, slots=True)
class Boost:
    """Multiply `sku`'s probability by `factor` (below 1 demotes), then renormalise."""

    sku: str
    factor: float


@dataclass(frozen=True, slots=True)
class Campaign:
    """A set of products with a guaranteed share of impressions and/or a cap, per period."""

    name: str
    products: tuple[str, ...]  # as the operator listed them
    min_share: float | None = None  # in (0, 1): of the eligible decisions in each period
    max_impressions: int | None = None  # per period; then its products are removed
    period_seconds: float = 86_400.0  # periods are aligned to the epoch: a day is a UTC day
    members: frozenset[str] = field(init=False, repr=False, compare=False)
    rule: str = field(init=False, repr=False, compare=False)  # what traces name it by

    def __post_init__(self) -> None:
        # Both read on every ruled decision: made once per rule set.
        object.__setattr__(self, "members", frozenset(self.products))
        object.__setattr__(self, "rule", f"rules.campaigns.{self.name}")

    def period_start(self, now: float) -> float:
        return math.floor(now / self.period_seconds) * self.period_seconds


@dataclass(frozen=True, slots=True)
class Tally:
    """A campaign's decisions in its current period, as the log counts them."""

    eligible: int = 0
    shown: int = 0


@dataclass(frozen=True, slots=True)
class Target:
    """A campaign with a share in one decision: the actions mixing may serve, the first-slot rate wanted."""

    rule: str
    actions: frozenset[str]
    rate: float


def required_rate(min_share: float, tally: Tally) -> float:
    """Return the first-slot rate to ask for: the share plus the shortfall so far.

    r = clip(2 s - k / n, 0, 1) after k impressions in n eligible decisions (r = s at the
    start of a period). Asking again for what is missing pulls the period's share back
    to s: its deviation shrinks by a factor (1 - 1/n) a decision, so the share ends
    closer to s than independent draws at rate s would (sd about sqrt(s (1 - s) / 3 n)).

    >>> required_rate(0.2, Tally()), required_rate(0.2, Tally(100, 10)), required_rate(0.2, Tally(10, 9))
    (0.2, 0.30000000000000004, 0.0)
    """
    if tally.eligible <= 0:
        return min_share
    return min(1.0, max(0.0, 2.0 * min_share - tally.shown / tally.eligible))


def shares_for(ranking: Ranking, targets: Sequence[Target]) -> tuple[tuple[float, frozenset[str]], ...]:
    """Return each target's epsilon (and its actions): what lifts its first-slot mass to its rate.

    With mass P on the target's actions, (1 - eps) P + eps = r gives eps = (r - P) / (1 - P);
    none when the policy already gives it r. Scaled down together when they add up to
    more than 1 (rules whose shares add up to 1 or more are refused when set).
    """
    return shares_of(ranking.action_ids, ranking.probabilities.tolist(), targets)


def shares_of(
    action_ids: Sequence[str], probabilities: Sequence[float], targets: Sequence[Target]
) -> tuple[tuple[float, frozenset[str]], ...]:
    """`shares_for` on the distribution as plain floats, in the order of `action_ids`."""
    if not targets:
        return ()
    mass = dict(zip(action_ids, probabilities, strict=True))
    shares = []
    for target in targets:
        held = math.fsum(mass.get(a, 0.0) for a in target.actions)
        if target.rate > held and held < 1.0:
            shares.append(((target.rate - held) / (1.0 - held), target.actions))
    total = math.fsum(e for e, _ in shares)
    if total > 1.0:
        shares = [(e / total, actions) for e, actions in shares]
    return tuple(shares)


def boosted_trace(boosts: Mapping[str, float]) -> dict[str, Any]:
    """The log's record of a decision's boosts (its rules trace's ``boosted``)."""
    return {a: {"rule": "rules.boosts", "factor": f} for a, f in sorted(boosts.items())}


def mixed_trace(shares: Sequence[tuple[float, frozenset[str]]], targets: Sequence[Target]) -> dict[str, Any]:
    """The log's record of the shares mixed into one decision (its rules trace's ``mixed``).

    With ``boosted`` (rules.Shaped.trace) all a replay needs (``Mixing.from_trace`` reads them
    back); ``mixed`` also names each share's campaign rule, for the event inspector.
    """
    if not shares:
        return {}
    rule_of = {t.actions: t.rule for t in targets}
    return {
        "mixed": [
            {"rule": rule_of.get(actions, ""), "epsilon": epsilon, "actions": sorted(actions)}
            for epsilon, actions in shares
        ]
    }
