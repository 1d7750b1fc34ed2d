"""Policies that need no model: the yardsticks a learned policy must beat."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from policies.base import Action, Features, LoggedEvent, Ranking, as_ranking, mask_excluded

__all__ = ["FirstActionPolicy", "UniformPolicy"]


class UniformPolicy:
    """Give every candidate that is not excluded the same probability."""

    kind = "uniform"

    def rank(self, context: Features, actions: Sequence[Action], excluded: frozenset[str]) -> Ranking:
        """Return the uniform distribution over eligible candidates."""
        ids = [a.id for a in actions]
        eligible = mask_excluded(ids, excluded)
        if not eligible.any():
            raise ValueError("every candidate is excluded")
        return as_ranking(ids, eligible, np.ones(int(eligible.sum())))

    def learn(self, event: LoggedEvent, rewards: Sequence[float]) -> None:
        """Learn nothing: uniform is the reference every learner is measured against."""


class FirstActionPolicy:
    """Always choose the first candidate not excluded: what a storefront shows without a bandit.

    Personalizer called it the baseline action; apprentice mode serves it, and an
    offline evaluation reports it so a learned policy can be compared with it.
    """

    kind = "baseline"

    def rank(self, context: Features, actions: Sequence[Action], excluded: frozenset[str]) -> Ranking:
        """Return probability 1 for the first eligible candidate."""
        ids = [a.id for a in actions]
        eligible = mask_excluded(ids, excluded)
        if not eligible.any():
            raise ValueError("every candidate is excluded")
        weights = np.zeros(int(eligible.sum()))
        weights[0] = 1.0
        return as_ranking(ids, eligible, weights)

    def learn(self, event: LoggedEvent, rewards: Sequence[float]) -> None:
        """Learn nothing: the baseline does what the storefront would have done."""
