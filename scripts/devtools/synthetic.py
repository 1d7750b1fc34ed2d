"""A seeded cross-sell problem whose best offer depends on the shopper.

Shoppers come in segments and devices; each (segment, device) pair has one offer
it clicks far more often than the rest. The click probabilities are known, so a
policy's true value can be computed exactly and compared with uniform random and
with the best possible policy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from policies.base import Action, Features, LoggedEvent, Ranking
from policies.deciding.sampling import choose
from policies.evaluation.dataset import LoggedDecision

__all__ = ["SyntheticProblem", "uniform_log"]

SEGMENTS = ("student", "parent", "pro", "gift")
DEVICES = ("mobile", "desktop")
OFFERS = (
    ("case", "accessory", "low"),
    ("charger", "power", "low"),
    ("headphones", "audio", "mid"),
    ("tripod", "photo", "mid"),
    ("memory_card", "storage", "low"),
    ("warranty", "service", "high"),
)


@dataclass
class SyntheticProblem:
    """Contexts, candidate offers and hidden click probabilities, all from one seed."""

    seed: int = 0
    best_click: float = 0.5
    base_click: tuple[float, float] = (0.02, 0.12)
    click_probability: np.ndarray = field(init=False)  # (segments, devices, offers)

    def __post_init__(self) -> None:
        rng = np.random.default_rng(self.seed)
        low, high = self.base_click
        table = rng.uniform(low, high, size=(len(SEGMENTS), len(DEVICES), len(OFFERS)))
        best = rng.integers(0, len(OFFERS), size=(len(SEGMENTS), len(DEVICES)))
        for s in range(len(SEGMENTS)):
            for d in range(len(DEVICES)):
                table[s, d, best[s, d]] = self.best_click
        self.click_probability = table

    @property
    def actions(self) -> tuple[Action, ...]:
        return tuple(
            Action(name, {"offer": {"kind": kind, "price_band": band}}) for name, kind, band in OFFERS
        )

    def draw_context(self, rng: np.random.Generator) -> tuple[Features, tuple[int, int]]:
        """Return a shopper's context features and the hidden (segment, device) key."""
        s, d = int(rng.integers(len(SEGMENTS))), int(rng.integers(len(DEVICES)))
        return {"shopper": {"segment": SEGMENTS[s], "device": DEVICES[d]}}, (s, d)

    def clicks(self, rng: np.random.Generator, key: tuple[int, int], action_id: str) -> bool:
        """Return whether this shopper clicks this offer."""
        return bool(rng.random() < self.click_probability[key][self._index(action_id)])

    def value_of(self, ranking: Ranking, key: tuple[int, int]) -> float:
        """Return the expected click rate of sampling from `ranking` for this shopper."""
        probabilities = self.click_probability[key]
        return float(
            sum(
                p * probabilities[self._index(a)]
                for a, p in zip(ranking.action_ids, ranking.probabilities, strict=True)
            )
        )

    @property
    def best_value(self) -> float:
        return float(self.click_probability.max(axis=2).mean())

    @property
    def uniform_value(self) -> float:
        return float(self.click_probability.mean())

    @staticmethod
    def _index(action_id: str) -> int:
        return next(i for i, offer in enumerate(OFFERS) if offer[0] == action_id)


def uniform_log(problem: SyntheticProblem, n: int, *, slots: int = 1, seed: int = 0) -> list[LoggedDecision]:
    """Return `n` decisions logged by uniform random, drawn by the real sampler, clicked per `problem`."""
    rng = np.random.default_rng(seed)
    actions = problem.actions
    ranking = Ranking(tuple(a.id for a in actions), np.full(len(actions), 1 / len(actions)))
    decisions = []
    for i in range(n):
        context, key = problem.draw_context(rng)
        choices = choose(ranking, slots, seed=int(rng.integers(1 << 62)))
        event = LoggedEvent(
            event_id=f"e{i}",
            created_at=1_000_000.0 + i,
            model_version="v1",
            context=context,
            actions=actions,
            excluded=frozenset(),
            choices=choices,
            probabilities=tuple(ranking.probabilities.tolist()),
            feedback=(),
        )
        rewards = tuple(float(problem.clicks(rng, key, c.action_id)) for c in choices)
        decisions.append(LoggedDecision(event, rewards))
    return decisions
