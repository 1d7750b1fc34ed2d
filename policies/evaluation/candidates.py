"""Candidate policies for offline evaluation, each replayed over a log in time order.

A candidate answers, for each logged decision, the probability it would have
given every action at every logged slot (given the offers logged above that
slot), and then may observe the decision's outcome. Progressive candidates learn
only from decisions *before* the one they score, so what they are credited with
is what they would have earned online (progressive validation, Blum, Kalai &
Langford 1999), the way Personalizer's offline evaluations searched settings.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from policies.base import ModelFormatError, Policy
from policies.deciding.baselines import UniformPolicy
from policies.deciding.vw import VWPolicy
from policies.evaluation.dataset import LoggedDecision, baseline_conditionals, logged_conditionals

__all__ = [
    "Baseline",
    "Candidate",
    "Fixed",
    "MostPopular",
    "ModelLoader",
    "Progressive",
    "Served",
    "parse_candidate",
    "uniform",
]


class Candidate(Protocol):
    """A policy the evaluator can replay."""

    name: str

    def slot_distributions(self, decision: LoggedDecision) -> list[np.ndarray]:
        """Return one distribution over ``decision.event.actions`` per logged slot."""
        ...

    def observe(self, decision: LoggedDecision) -> None:
        """See the decision's outcome after it has been scored (progressive candidates)."""
        ...

    def covers(self, decision: LoggedDecision) -> bool:
        """Whether this candidate may be judged on the decision (e.g. made after it existed)."""
        ...


@dataclass
class Fixed:
    """A policy that does not change during the replay: uniform, or a saved model.

    ``available_from`` keeps a saved model from being judged on decisions made before
    it was published: it may have learned from those, and would look better than it is.
    """

    name: str
    policy: Policy | UniformPolicy  # uniform ranks and learns nothing: it has no model to save
    available_from: float = float("-inf")

    def slot_distributions(self, decision: LoggedDecision) -> list[np.ndarray]:
        event = decision.event
        ranking = self.policy.rank(event.context, event.actions, event.excluded)
        return logged_conditionals(ranking.probabilities, decision)

    def observe(self, decision: LoggedDecision) -> None:
        """A fixed policy learns nothing."""

    def covers(self, decision: LoggedDecision) -> bool:
        return decision.event.created_at >= self.available_from


def uniform() -> Fixed:
    """Return uniform random over the eligible candidates."""
    return Fixed("uniform", UniformPolicy())


@dataclass
class Progressive:
    """A VW policy trained on the log itself: score decision t, then learn from it."""

    name: str
    vw_args: str
    _policy: VWPolicy = field(init=False)

    def __post_init__(self) -> None:
        self._policy = VWPolicy(self.vw_args)

    def slot_distributions(self, decision: LoggedDecision) -> list[np.ndarray]:
        event = decision.event
        ranking = self._policy.rank(event.context, event.actions, event.excluded)
        return logged_conditionals(ranking.probabilities, decision)

    def observe(self, decision: LoggedDecision) -> None:
        self._policy.learn(decision.event, decision.rewards)

    def covers(self, decision: LoggedDecision) -> bool:
        return True


@dataclass
class MostPopular:
    """Offer the actions with the most positive rewards so far, best first.

    Deterministic except for ties, which split the probability evenly; before any
    reward has been seen every eligible action ties, so it starts as uniform.
    """

    name: str = "most-popular"
    _positives: Counter[str] = field(default_factory=Counter)

    def slot_distributions(self, decision: LoggedDecision) -> list[np.ndarray]:
        event = decision.event
        counts = np.array([self._positives[a.id] for a in event.actions], dtype=np.float64)
        available = np.array([a.id not in event.excluded for a in event.actions])
        rows = []
        for slot, choice in enumerate(event.choices):
            banned = event.slot_banned(slot)
            allowed = available & np.array([a.id not in banned for a in event.actions])
            rows.append(_best(counts, allowed))
            available[decision.action_index(choice.action_id)] = False
        return rows

    def observe(self, decision: LoggedDecision) -> None:
        for choice, reward in zip(decision.event.choices, decision.rewards, strict=True):
            if reward > 0:
                self._positives[choice.action_id] += 1

    def covers(self, decision: LoggedDecision) -> bool:
        return True


@dataclass
class Baseline:
    """What the storefront shows without xsell: each slot's logged baseline action,
    else the first candidate that slot may show (Personalizer's baseline)."""

    name: str = "baseline"

    def slot_distributions(self, decision: LoggedDecision) -> list[np.ndarray]:
        return baseline_conditionals(decision)

    def observe(self, decision: LoggedDecision) -> None:
        """The baseline learns nothing."""

    def covers(self, decision: LoggedDecision) -> bool:
        return True


@dataclass
class Served:
    """Each decision replayed by what served it: the model version it logged (with the
    logged exploration share and slot controls) or the baseline.

    Its probabilities are the logged ones exactly, so its IPS equals the logged
    policy's value: a check that the log holds everything that shaped what was served.
    Decisions whose model file is gone (pruned) are left out.
    """

    load_model: ModelLoader
    name: str = "served"
    _policies: dict[str, Policy | None] = field(default_factory=dict)

    def slot_distributions(self, decision: LoggedDecision) -> list[np.ndarray]:
        event = decision.event
        if event.served_baseline:
            return baseline_conditionals(decision)
        policy = self._policy(event.model_version)
        if policy is None:
            raise ValueError(f"event {event.event_id!r}: model {event.model_version} is not available")
        return logged_conditionals(
            policy.rank(event.context, event.actions, event.excluded).probabilities, decision
        )

    def observe(self, decision: LoggedDecision) -> None:
        """Every model replays as it was published; nothing is learned."""

    def covers(self, decision: LoggedDecision) -> bool:
        return decision.event.served_baseline or self._policy(decision.event.model_version) is not None

    def _policy(self, version: str) -> Policy | None:
        if version not in self._policies:
            try:
                self._policies[version] = self.load_model(version)[0]
            except ModelFormatError:
                self._policies[version] = None  # its file was pruned or damaged
        return self._policies[version]


def _best(counts: np.ndarray, available: np.ndarray) -> np.ndarray:
    if not available.any():
        return np.zeros_like(counts)
    top = counts[available].max()
    winners = available & (counts == top)
    return winners / winners.sum()


ModelLoader = Callable[[str], tuple[Policy, float]]


def parse_candidate(spec: str, load_model: ModelLoader | None = None) -> Candidate:
    """Build a candidate from its command-line spelling.

    ``uniform``, ``most-popular``, ``baseline``, ``served`` (each decision by the model
    version or baseline that served it), ``model:VERSION`` (a registry version, which
    `load_model` turns into the policy and its publication time) or ``vw:ARGS``
    (a VW policy trained progressively on the log).
    """
    if spec == "uniform":
        return uniform()
    if spec == "most-popular":
        return MostPopular()
    if spec == "baseline":
        return Baseline()
    if spec == "served":
        if load_model is None:
            raise ValueError("served: no model registry to load the serving models from")
        return Served(load_model)
    if spec.startswith("model:"):
        if load_model is None:
            raise ValueError(f"{spec}: no model registry to load it from")
        policy, published_at = load_model(spec.removeprefix("model:"))
        return Fixed(spec, policy, available_from=published_at)
    if spec.startswith("vw:"):
        return Progressive(spec, spec.removeprefix("vw:").strip())
    raise ValueError(
        f"unknown policy {spec!r}: use uniform, most-popular, baseline, served, model:VERSION or vw:ARGS"
    )
