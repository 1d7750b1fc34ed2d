"""LoggedDecision: one closed decision with the reward each of its slots earned.

This is what the evaluator replays. It comes from our own log (rewards computed
by ``RewardRules`` from on-time feedback) or from an imported log such as the
Open Bandit Dataset (rewards given directly).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from policies.base import LoggedEvent, Ranking
from policies.deciding.sampling import baseline_choice, conditionals, served

__all__ = ["LoggedDecision", "baseline_conditionals", "logged_conditionals"]


@dataclass(frozen=True, slots=True)
class LoggedDecision:
    """A logged event and the reward of each slot, in slot order."""

    event: LoggedEvent
    rewards: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.rewards) != len(self.event.choices):
            raise ValueError(
                f"event {self.event.event_id!r}: {len(self.rewards)} rewards for "
                f"{len(self.event.choices)} slots"
            )

    @property
    def logged_distribution_known(self) -> bool:
        """Whether the log kept the logging policy's whole first-slot distribution."""
        return len(self.event.probabilities) == len(self.event.actions)

    def action_index(self, action_id: str) -> int:
        """Return the position of `action_id` among the event's candidates."""
        for index, action in enumerate(self.event.actions):
            if action.id == action_id:
                return index
        raise ValueError(f"event {self.event.event_id!r}: chosen action {action_id!r} is not a candidate")


def logged_conditionals(distribution: np.ndarray, decision: LoggedDecision) -> list[np.ndarray]:
    """Return, per logged slot, the distribution serving would have drawn that slot from.

    `distribution` is a policy's ranking of the event's actions. As on the rank path
    (``policies.deciding.sampling``), the exploration share and the promotions logged with
    the event are mixed in,
    and each slot is restricted to the actions not yet chosen and not excluded from
    it, by the same arithmetic, so the policy that served the decision replays to
    exactly the logged propensities. A slot where the policy has no probability left
    gets an all-zero row: the policy would have shown fewer offers.
    """
    event = decision.event
    ranking = served(
        Ranking(tuple(a.id for a in event.actions), np.asarray(distribution, dtype=np.float64)),
        event.exploration_share,
        event.excluded,
        event.mixing,
    )
    rows = conditionals(ranking, [c.action_id for c in event.choices], slot_excluded=event.slot_excluded)
    return [np.array(row, dtype=np.float64) for row in rows]


def baseline_conditionals(decision: LoggedDecision) -> list[np.ndarray]:
    """Return, per logged slot, probability 1 for what the storefront shows there without xsell.

    The slot's logged baseline action if it may be shown there, else the first
    candidate that may (given the offers logged above it): what apprentice and
    logging-only modes serve, so such decisions replay to their logged propensities.
    """
    event = decision.event
    ids = [a.id for a in event.actions]
    shown: set[str] = set()
    rows = []
    for slot, choice in enumerate(event.choices):
        wanted = event.baseline[slot] if slot < len(event.baseline) else None
        pick = baseline_choice(ids, event.excluded | event.slot_banned(slot) | shown, wanted)
        rows.append(np.array([1.0 if a == pick else 0.0 for a in ids], dtype=np.float64))
        shown.add(choice.action_id)
    return rows
