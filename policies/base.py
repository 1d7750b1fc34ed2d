"""Domain types shared by the rank path, the log and the learner."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Self

import numpy as np

__all__ = [
    "Action",
    "Feedback",
    "FeatureValue",
    "Features",
    "LoggedEvent",
    "Mixing",
    "ModelCard",
    "ModelFormatError",
    "Policy",
    "Ranking",
    "SlotChoice",
]

FeatureValue = str | int | float | bool | list[str]
# namespace -> feature name -> value, e.g. {"user": {"device": "mobile"}}
Features = Mapping[str, Mapping[str, FeatureValue]]


class ModelFormatError(Exception):
    """A model file is missing, corrupt, or of a format this code cannot load."""


@dataclass(frozen=True, slots=True)
class Action:
    """A candidate offer with the features the policy may use."""

    id: str
    features: Features = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Ranking:
    """A probability for every candidate, in the order the candidates were given.

    Excluded candidates are present with probability 0; the rest sum to 1.
    """

    action_ids: tuple[str, ...]
    probabilities: np.ndarray  # shape (n_actions,), float64


@dataclass(frozen=True, slots=True)
class SlotChoice:
    """The offer chosen for one slot and the probability it had when chosen."""

    slot: int  # 0-based
    action_id: str
    probability: float  # conditional on the offers chosen for earlier slots


@dataclass(frozen=True, slots=True)
class Mixing:
    """Operator promotions mixed into a served distribution (#15), exactly as logged.

    Each boosted action's probability is multiplied by its factor and the whole
    renormalised, before the exploration share; then each share's epsilon of the
    probability goes evenly to its actions: p = (1 - sum eps) p' + sum_i eps_i / |A_i|
    on A_i (policies/deciding/sampling.py). Logged, so a replay serves the same mixture.
    """

    boosts: tuple[tuple[str, float], ...] = ()  # (action id, factor)
    shares: tuple[tuple[float, frozenset[str]], ...] = ()  # (epsilon, the actions it goes to)

    def __bool__(self) -> bool:
        return bool(self.boosts or self.shares)

    @classmethod
    def from_trace(cls, trace: Mapping[str, Any] | None) -> Mixing | None:
        """Read the promotions a decision was served with back from its logged rules trace
        (``boosted`` and ``mixed``, policies/deciding/promotions.py); None without any."""
        if not trace or ("boosted" not in trace and "mixed" not in trace):
            return None
        boosted = trace.get("boosted") or {}
        mixed = trace.get("mixed") or []
        return cls(
            boosts=tuple((a, float(b["factor"])) for a, b in sorted(boosted.items())),
            shares=tuple((float(m["epsilon"]), frozenset(m["actions"])) for m in mixed),
        )


@dataclass(frozen=True, slots=True)
class Feedback:
    """One thing the shopper did with a decision, as recorded in the log."""

    signal: str  # click, save, add_to_cart, purchase, dismiss, or "reward" for a raw value
    action_id: str
    value: float | None
    received_at: float
    learned: bool = False  # already in a published model (the learner's corrections need it)
    log_id: int = 0  # its row in the log, so the learner marks exactly what it learned


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    """A closed decision as the learner and the evaluator see it."""

    event_id: str
    created_at: float
    model_version: str
    context: Features
    actions: tuple[Action, ...]
    excluded: frozenset[str]
    choices: tuple[SlotChoice, ...]
    probabilities: tuple[float, ...]  # what the first slot was drawn from, aligned with actions
    feedback: tuple[Feedback, ...]  # only what arrived within the reward window
    # Per slot, the actions that slot could not show, on top of `excluded` (empty: none).
    # The logged probability of slot k is conditional on these, so a learner or a
    # replay that ignores them would credit the wrong candidates.
    slot_excluded: tuple[frozenset[str], ...] = ()
    # Per slot, what the storefront shows without xsell (None: the first candidate it may show)
    baseline: tuple[str | None, ...] = ()
    exploration_share: float = 0.0  # mixed into the served distribution (sampling.mix_uniform)
    served_baseline: bool = False  # apprentice or logging-only mode served the baseline
    rules: Mapping[str, Any] | None = None  # the decision's rules trace as logged (#15)

    @property
    def mixing(self) -> Mixing | None:
        """The operator promotions mixed into what was served (#15).

        Read from the trace when asked: replays need it, learning never does, and the
        learner reads every event.
        """
        return Mixing.from_trace(self.rules)

    def slot_banned(self, slot: int) -> frozenset[str]:
        """Return the actions slot `slot` (0-based) could not show besides `excluded`."""
        return self.slot_excluded[slot] if slot < len(self.slot_excluded) else frozenset()


@dataclass(frozen=True, slots=True)
class ModelCard:
    """Metadata saved beside every model file; `sha256` guards against corruption."""

    kind: str
    vw_args: str
    format_version: int
    sha256: str
    events_learned: int


class Policy(Protocol):
    """Give a probability for every candidate; learn from closed events."""

    def rank(self, context: Features, actions: Sequence[Action], excluded: frozenset[str]) -> Ranking:
        """Return the distribution to sample from; never sample here."""
        ...

    def learn(self, event: LoggedEvent, rewards: Sequence[float]) -> None:
        """Update from one closed event; `rewards` holds one value per slot."""
        ...

    def save(self, path: Path) -> ModelCard:
        """Write the model to `path` (and its card beside it)."""
        ...

    @classmethod
    def load(cls, path: Path) -> Self:
        """Read a model written by `save`; raise ModelFormatError if it is not sound."""
        ...


def mask_excluded(action_ids: Sequence[str], excluded: frozenset[str]) -> np.ndarray:
    """Return a boolean array, True where the action may be chosen."""
    return np.fromiter((a not in excluded for a in action_ids), dtype=bool, count=len(action_ids))


def as_ranking(action_ids: Sequence[str], eligible: np.ndarray, scores: np.ndarray) -> Ranking:
    """Spread `scores` (one per eligible action) into a full, normalised Ranking."""
    probabilities = np.zeros(len(action_ids), dtype=np.float64)
    weights = np.asarray(scores, dtype=np.float64)
    total = weights.sum()
    if not np.isfinite(total) or total <= 0:
        # A degenerate model output must not become a degenerate decision.
        weights = np.ones_like(weights)
        total = weights.sum()
    probabilities[eligible] = weights / total
    return Ranking(tuple(action_ids), probabilities)
