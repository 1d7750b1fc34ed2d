"""Logs with known truth, drawn by the real sampler, for evaluator tests."""

from __future__ import annotations

import numpy as np

from policies.base import LoggedEvent, Ranking
from policies.dataset import LoggedDecision
from policies.sampling import choose
from scripts.synthetic import SyntheticProblem


def uniform_log(problem: SyntheticProblem, n: int, *, slots: int = 1, seed: int = 0) -> list[LoggedDecision]:
    """Return `n` decisions logged by uniform random, with clicks from `problem`."""
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
