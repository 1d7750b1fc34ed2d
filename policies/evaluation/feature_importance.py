"""How strongly each feature goes with reward in a log: a first look, not a causal claim.

For every feature token (``namespace``, ``name`` or ``name=value``) seen in the
context or in the chosen action of at least ``min_share`` of the decisions (and
absent from at least that share), the score is the absolute difference between
the mean first-slot reward of decisions that carried it and of those that did not.
Features that never vary carry no information and are left out.

>>> from policies.base import Action, LoggedEvent, SlotChoice
>>> def event(i, device):
...     return LoggedEvent(f"e{i}", 0.0, "v1", {"user": {"device": device}}, (Action("a"),),
...                        frozenset(), (SlotChoice(0, "a", 1.0),), (1.0,), ())
>>> from policies.evaluation.dataset import LoggedDecision
>>> log = [LoggedDecision(event(i, "mobile" if i % 2 else "desktop"), (float(i % 2),)) for i in range(10)]
>>> feature_scores(log)[0]
FeatureScore(namespace='user', name='device=desktop', score=1.0)
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from policies.base import Features
from policies.evaluation.dataset import LoggedDecision

__all__ = ["FeatureScore", "feature_scores"]


@dataclass(frozen=True, slots=True)
class FeatureScore:
    namespace: str
    name: str
    score: float


def feature_scores(
    decisions: Sequence[LoggedDecision], *, min_share: float = 0.01, top: int = 100
) -> list[FeatureScore]:
    """Return the `top` features by score, highest first."""
    n = len(decisions)
    if n == 0:
        return []
    total = sum(d.rewards[0] for d in decisions if d.rewards)
    count: Counter[tuple[str, str]] = Counter()
    reward_with: dict[tuple[str, str], float] = defaultdict(float)
    for decision in decisions:
        event = decision.event
        reward = decision.rewards[0] if decision.rewards else 0.0
        chosen = event.choices[0].action_id if event.choices else None
        action_features = next((a.features for a in event.actions if a.id == chosen), {})
        for token in set(_tokens(event.context)) | set(_tokens(action_features)):
            count[token] += 1
            reward_with[token] += reward
    scores = []
    for token, seen in count.items():
        if seen < min_share * n or n - seen < min_share * n:
            continue
        with_mean = reward_with[token] / seen
        without_mean = (total - reward_with[token]) / (n - seen)
        scores.append(FeatureScore(token[0], token[1], abs(with_mean - without_mean)))
    scores.sort(key=lambda s: (-s.score, s.namespace, s.name))
    return scores[:top]


def _tokens(features: Features) -> Iterator[tuple[str, str]]:
    for namespace, values in features.items():
        for name, value in values.items():
            if isinstance(value, bool):
                if value:
                    yield namespace, name
            elif isinstance(value, str):
                yield namespace, f"{name}={value}"
            elif isinstance(value, list):
                yield from ((namespace, f"{name}={item}") for item in value)
            else:
                yield namespace, name  # a number: present or not
