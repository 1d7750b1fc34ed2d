"""LoggedDecision: one closed decision with the reward each of its slots earned.

This is what the evaluator replays. It comes from our own log (rewards computed
by ``RewardRules`` from on-time feedback) or from an imported log such as the
Open Bandit Dataset (rewards given directly).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from policies.base import LoggedEvent

__all__ = ["LoggedDecision", "logged_conditionals"]


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
    """Return, per logged slot, `distribution` restricted to the actions not yet chosen.

    This is exactly how ``policies.sampling.choose`` draws later slots, so a policy
    evaluated here is judged on the decisions it would really have made. A slot
    where the policy has no probability left gets an all-zero row: the policy would
    have shown fewer offers.
    """
    remaining = np.array(distribution, dtype=np.float64)
    rows = []
    for choice in decision.event.choices:
        total = remaining.sum()
        rows.append(remaining / total if total > 0 else np.zeros_like(remaining))
        remaining[decision.action_index(choice.action_id)] = 0.0
    return rows
