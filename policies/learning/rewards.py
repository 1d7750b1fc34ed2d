"""Turn what a shopper did into the reward a policy learns from.

Defaults, and why:

- ``click``, ``save``, ``add_to_cart``: 1.0 each. They are all "the offer was
  wanted"; telling them apart adds variance without much signal at low volume.
- ``purchase``: 1.0 plus ``purchase_value_scale`` (0.005) times the order value, so a sale
  is worth at least a click and bigger sales are worth somewhat more.
- ``dismiss``: -0.1, a small penalty: a dismissal is worse than silence (the offer
  annoyed someone) but must not drown the positives.
- silence (no feedback before the event closes): ``default_reward`` = 0.0.

Several signals for the same offer are aggregated with ``max`` by default (a click
then a purchase is worth the purchase, not both), ``sum``, ``average`` (their mean),
or ``earliest`` (the first one counts, as Personalizer's "earliest"). A raw reward
posted directly overrides the signals for that offer; several raw rewards combine as
the latest one (``max``), their sum (``sum``, Personalizer's "sum"), their mean
(``average``, Personalizer's "average") or the first one (``earliest``).
Every result is clipped to [``min_reward``, ``max_reward``].
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from policies.base import Feedback, LoggedEvent

__all__ = ["RAW_REWARD", "SIGNALS", "RewardRules"]

SIGNALS = ("click", "save", "add_to_cart", "purchase", "dismiss")
RAW_REWARD = "reward"


@dataclass(frozen=True, slots=True)
class RewardRules:
    """The signal → reward mapping and how several signals combine."""

    click: float = 1.0
    save: float = 1.0
    add_to_cart: float = 1.0
    purchase: float = 1.0
    purchase_value_scale: float = 0.005
    dismiss: float = -0.1
    default_reward: float = 0.0
    aggregation: Literal["max", "sum", "average", "earliest"] = "max"
    min_reward: float = -1.0
    max_reward: float = 2.0

    def signal_reward(self, signal: str, value: float | None) -> float:
        """Return the reward for one signal, before aggregation and clipping."""
        if signal not in SIGNALS:
            raise ValueError(f"unknown signal {signal!r}")
        reward = float(getattr(self, signal))
        if signal == "purchase" and value is not None:
            reward += self.purchase_value_scale * value
        return reward

    def reward_for(self, feedback: Sequence[Feedback], action_id: str) -> float:
        """Return the reward for `action_id` given an event's on-time feedback."""
        own = sorted((f for f in feedback if f.action_id == action_id), key=lambda f: f.received_at)
        raw = [f.value for f in own if f.signal == RAW_REWARD and f.value is not None]
        if raw:
            return self._clip(self._combine(raw, latest=True))
        rewards = [self.signal_reward(f.signal, f.value) for f in own if f.signal != RAW_REWARD]
        if not rewards:
            return self._clip(self.default_reward)
        return self._clip(self._combine(rewards, latest=False))

    def slot_rewards(self, event: LoggedEvent) -> tuple[float, ...]:
        """Return the reward each slot of `event` earned (its choices, in slot order).

        The one place a decision's rewards are computed, so the learner, the shadow, the
        guardrail, the metrics and the evaluator cannot disagree about what a slot earned.
        """
        return tuple(self.reward_for(event.feedback, choice.action_id) for choice in event.choices)

    def _combine(self, rewards: Sequence[float], *, latest: bool) -> float:
        """Combine rewards in arrival order; under ``max`` raw rewards keep the latest."""
        if self.aggregation == "sum":
            return sum(rewards)
        if self.aggregation == "average":
            return sum(rewards) / len(rewards)
        if self.aggregation == "earliest":
            return rewards[0]
        return rewards[-1] if latest else max(rewards)

    def _clip(self, reward: float) -> float:
        return min(max(reward, self.min_reward), self.max_reward)
