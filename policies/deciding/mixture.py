"""The distribution a decision samples from: the policy's, boosted, with the exploration
share and then the promotions' shares mixed in (each logged with the decision).

The rank path (`promote`) and a replay of the log (`served`) run the same steps on the
same floats, one plain list per decision: a per-candidate Python step only where the
formula needs one, the boosted and shared candidates found by position, and one array
at the end. So a replayed probability equals the served one bit for bit.
``policies.deciding.sampling`` re-exports `served`, `boost`, `mix_uniform` and
`mix_shares`, where they used to live.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from policies.base import Mixing, Ranking
from policies.deciding.promotions import Target, shares_of

__all__ = ["boost", "mix_shares", "mix_uniform", "promote", "served"]

Shares = tuple[tuple[float, frozenset[str]], ...]  # (epsilon, the actions it goes to)


def served(
    ranking: Ranking, exploration_share: float, excluded: frozenset[str], mixing: Mixing | None = None
) -> Ranking:
    """Return the distribution the rank path samples from: the policy's, boosted, with the
    uniform share and then the promotions' shares mixed in (all three logged with it).

    Boosts come before the exploration share, so every eligible candidate keeps its floor
    of share / k however an operator demotes it.
    """
    boosts = mixing.boosts if mixing is not None else ()
    shares = mixing.shares if mixing is not None else ()
    if not boosts and exploration_share <= 0 and not shares:
        return ranking
    ids = ranking.action_ids
    probabilities = _mixed(ids, ranking.probabilities.tolist(), exploration_share, excluded, dict(boosts))
    if shares:
        probabilities = _shared(ids, probabilities, shares)
    return Ranking(ids, np.array(probabilities, dtype=np.float64))


def promote(
    ranking: Ranking,
    exploration_share: float,
    excluded: frozenset[str],
    boosts: Mapping[str, float],
    targets: Sequence[Target],
) -> tuple[Ranking, Shares]:
    """Serve `ranking` boosted, with the exploration share and the shares that lift
    `targets` to their rates: return the distribution and the shares, which with the
    boosts are all a replay needs (``served(..., Mixing(boosts, shares))``).

    Each share's epsilon is read off the distribution it is mixed into
    (promotions.shares_of).
    """
    ids = ranking.action_ids
    probabilities = _mixed(ids, ranking.probabilities.tolist(), exploration_share, excluded, boosts)
    shares = shares_of(ids, probabilities, targets)
    if shares:
        probabilities = _shared(ids, probabilities, shares)
    return Ranking(ids, np.array(probabilities, dtype=np.float64)), shares


def boost(ranking: Ranking, factors: Sequence[tuple[str, float]]) -> Ranking:
    """Multiply the named actions' probabilities by their factors and renormalise.

    p'_a = w_a p_a / sum_b w_b p_b (w = 1 for actions not named). An action of
    probability 0 (excluded) stays at 0; when everything left is 0 nothing changes.

    >>> boost(Ranking(("a", "b"), np.array([0.5, 0.5])), [("b", 3.0)]).probabilities
    array([0.25, 0.75])
    """
    probabilities = ranking.probabilities.tolist()
    boosted = _boosted(ranking.action_ids, probabilities, dict(factors))
    if boosted is probabilities:
        return ranking
    return Ranking(ranking.action_ids, np.array(boosted, dtype=np.float64))


def mix_uniform(ranking: Ranking, share: float, excluded: frozenset[str]) -> Ranking:
    """Spread `share` of the probability evenly over the candidates not excluded.

    p' = (1 - share) * p + share / k over the k eligible candidates: every one of them
    keeps at least share / k, whatever the policy thinks (Personalizer's exploration
    percentage, on top of the policy's own exploration).

    >>> mix_uniform(Ranking(("a", "b", "c"), np.array([1.0, 0.0, 0.0])), 0.3, frozenset({"c"})).probabilities
    array([0.85, 0.15, 0.  ])
    """
    mixed = _uniform(ranking.action_ids, ranking.probabilities.tolist(), share, excluded)
    return Ranking(ranking.action_ids, np.array(mixed, dtype=np.float64))


def mix_shares(ranking: Ranking, shares: Sequence[tuple[float, frozenset[str]]]) -> Ranking:
    """Give each share's epsilon of the probability evenly to its actions.

    p' = (1 - sum_i eps_i) p + sum_i eps_i / |A_i| [a in A_i]: with probability eps_i the
    slot is drawn uniformly from A_i, else from p. The actions must be candidates that
    may be shown (the rank path passes only those), and sum_i eps_i <= 1.

    >>> r = Ranking(("a", "b", "c"), np.array([1.0, 0.0, 0.0]))
    >>> mix_shares(r, [(0.5, frozenset({"b", "c"}))]).probabilities
    array([0.5 , 0.25, 0.25])
    """
    mixed = _shared(ranking.action_ids, ranking.probabilities.tolist(), shares)
    return Ranking(ranking.action_ids, np.array(mixed, dtype=np.float64))


def _mixed(
    ids: tuple[str, ...],
    probabilities: list[float],
    share: float,
    excluded: frozenset[str],
    boosts: Mapping[str, float],
) -> list[float]:
    """The boosts, then the exploration share (`served` and `promote` alike)."""
    if boosts:
        probabilities = _boosted(ids, probabilities, boosts)
    if share > 0:
        probabilities = _uniform(ids, probabilities, share, excluded)
    return probabilities


def _boosted(ids: tuple[str, ...], probabilities: list[float], weight: Mapping[str, float]) -> list[float]:
    """p * w for the named candidates (p * 1 = p for the rest), renormalised; the input
    itself when nothing is left to renormalise."""
    weighted = list(probabilities)
    for index, factor in _positioned(ids, weight):
        weighted[index] = weighted[index] * factor
    total = math.fsum(weighted)
    if total <= 0:
        return probabilities
    return [w / total for w in weighted]


def _uniform(
    ids: tuple[str, ...], probabilities: list[float], share: float, excluded: frozenset[str]
) -> list[float]:
    eligible = [a not in excluded for a in ids]
    count = sum(eligible)
    floor = [share / count if ok else 0.0 for ok in eligible]
    return [(1.0 - share) * p + f for p, f in zip(probabilities, floor, strict=True)]


def _shared(
    ids: tuple[str, ...], probabilities: list[float], shares: Sequence[tuple[float, frozenset[str]]]
) -> list[float]:
    """kept * p + the shares' extra, the extra summed per action in a fixed (sorted) order."""
    kept = 1.0 - math.fsum(epsilon for epsilon, _ in shares)
    extra: dict[str, float] = {}
    for epsilon, actions in shares:
        each = epsilon / len(actions)
        for action_id in sorted(actions):  # a fixed order: the replay adds the same floats
            extra[action_id] = extra.get(action_id, 0.0) + each
    # kept * p + 0.0 for every candidate (the + 0.0 as written one by one before: it turns
    # a -0.0 into 0.0), then kept * p + extra for the shares' few.
    mixed = [kept * p + 0.0 for p in probabilities]
    for index, added in _positioned(ids, extra):
        mixed[index] = kept * probabilities[index] + added
    return mixed


def _positioned(ids: tuple[str, ...], values: Mapping[str, float]) -> list[tuple[int, float]]:
    """(index, value) for each candidate `values` names, found without a Python step per candidate."""
    found = []
    for action_id, value in values.items():
        if action_id not in ids:
            continue
        if ids.count(action_id) == 1:  # as every edge sends them: ids are unique
            found.append((ids.index(action_id), value))
        else:
            found += [(index, value) for index, a in enumerate(ids) if a == action_id]
    return found
