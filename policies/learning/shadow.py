"""Shadow (apprentice) mode: a candidate policy learns beside the active one, unseen.

The shadow lives in the learner. Each closed event is first *scored* by the
shadow (its probability for every logged choice, given the slots above, and
whether its top offer is the active policy's top offer), then learned from, the
same rewards as the active model. Nothing it does reaches a shopper: the rank
path never sees it. Its scores are saved with the decisions, so its off-policy
value (IPS, SNIPS) and agreement rate are known from live traffic, and it is
published as ``candidate`` versions an operator can promote.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from policies.base import LoggedEvent
from policies.deciding.vw import VWPolicy
from policies.evaluation.dataset import LoggedDecision, logged_conditionals
from policies.evaluation.estimators import Estimate, EvalBatch, InverseProbabilityWeighting, SelfNormalizedIPS
from policies.learning.registry import ModelChange, ModelRegistry, ModelVersion
from policies.learning.rewards import RewardRules

__all__ = ["Shadow", "ShadowReport", "ShadowScore", "auto_promote", "latest_version", "live_report", "report"]

log = logging.getLogger(__name__)
NOTE_PREFIX = "shadow: "


@dataclass(frozen=True, slots=True)
class ShadowScore:
    event_id: str
    p_target: tuple[float, ...]  # per logged slot
    agrees: bool


class ShadowScoreSink(Protocol):
    def record_shadow_scores(self, shadow: str, scores: Sequence[ShadowScore]) -> None: ...


class ShadowScoreSource(Protocol):
    def shadow_scored(
        self, shadow: str, *, limit: int = 100_000
    ) -> list[tuple[LoggedEvent, tuple[float, ...], bool]]: ...


@dataclass(frozen=True, slots=True)
class ShadowReport:
    """How the shadow would have done on the live decisions it scored."""

    shadow: str
    version: str | None
    n: int
    agreement: float  # share of decisions where its top offer was the active policy's
    active: Estimate | None  # what the served policies earned on the same decisions
    estimates: tuple[Estimate, ...]  # IPS, SNIPS of the shadow


class Shadow:
    """Score each closed event with a candidate policy, then let it learn from it."""

    def __init__(self, registry: ModelRegistry, sink: ShadowScoreSink, vw_args: str):
        self.registry = registry
        self.sink = sink
        self.vw_args = vw_args
        self.version: ModelVersion | None = latest_version(registry, vw_args)
        self.policy = registry.load(self.version) if self.version else VWPolicy(vw_args)
        self._pending: list[ShadowScore] = []
        self._pending_ids: set[str] = set()

    def observe(self, event: LoggedEvent, rewards: Sequence[float]) -> None:
        """Score `event` as the shadow would have served it, then learn from its rewards."""
        if event.event_id in self._pending_ids:
            return  # handed over again after a rollback reset the learner's cursor
        decision = LoggedDecision(event, tuple(rewards))
        ranking = self.policy.rank(event.context, event.actions, event.excluded)
        rows = logged_conditionals(ranking.probabilities, decision)
        p_target = tuple(
            float(row[decision.action_index(c.action_id)]) for row, c in zip(rows, event.choices, strict=True)
        )
        agrees = bool(
            decision.logged_distribution_known
            and int(np.argmax(ranking.probabilities)) == int(np.argmax(event.probabilities))
        )
        self._pending.append(ShadowScore(event.event_id, p_target, agrees))
        self._pending_ids.add(event.event_id)
        self.policy.learn(event, rewards)

    def correct(self, event: LoggedEvent, rewards: Sequence[float]) -> None:
        """Learn an event again after a later signal changed its reward, as the active model does."""
        self.policy.learn(event, rewards)

    def snapshot(self) -> ModelVersion | None:
        """Publish the shadow as a candidate version and save the scores it made."""
        if not self._pending:
            return None
        self.version = self.registry.publish(
            self.policy,
            parent=self.version.version if self.version else None,
            note=NOTE_PREFIX + self.vw_args,
            state="candidate",
        )
        self.sink.record_shadow_scores(self.vw_args, self._pending)
        self._pending, self._pending_ids = [], set()
        return self.version


def latest_version(registry: ModelRegistry, vw_args: str) -> ModelVersion | None:
    """Return the newest candidate published by a shadow with these arguments."""
    for model in registry.index.versions():  # newest first
        if model.state == "candidate" and model.note == NOTE_PREFIX + vw_args and registry.has_file(model):
            return model
    return None


def report(
    shadow: str,
    version: str | None,
    scored: Sequence[tuple[LoggedEvent, tuple[float, ...], bool]],
    rules: RewardRules,
) -> ShadowReport:
    """Return the shadow's agreement rate and IPS/SNIPS estimates over the events it scored."""
    if not scored:
        return ShadowReport(shadow, version, 0, 0.0, None, ())
    slots = max(len(event.choices) for event, _, _ in scored)
    shape = (len(scored), slots)
    reward, p_log, p_target = np.zeros(shape), np.ones(shape), np.zeros(shape)
    mask = np.zeros(shape, dtype=bool)
    for i, (event, probabilities, _) in enumerate(scored):
        rewards = rules.slot_rewards(event)
        for k, choice in enumerate(event.choices):
            reward[i, k] = rewards[k]
            p_log[i, k] = choice.probability
            p_target[i, k] = probabilities[k]
            mask[i, k] = True
    batch = EvalBatch(reward, p_log, p_target, mask)
    served = EvalBatch(reward, p_log, p_log.copy(), mask)
    active = InverseProbabilityWeighting().estimate(served)
    active = Estimate("on-policy", active.value, active.low, active.high, active.n, active.ess, active.level)
    estimates = (InverseProbabilityWeighting().estimate(batch), SelfNormalizedIPS().estimate(batch))
    agreement = float(np.mean([agrees for _, _, agrees in scored]))
    return ShadowReport(shadow, version, len(scored), agreement, active, estimates)


def live_report(
    source: ShadowScoreSource, registry: ModelRegistry, shadow_args: str, rules: RewardRules
) -> ShadowReport:
    """Return the report of the shadow with these arguments from what it has scored so far."""
    version = latest_version(registry, shadow_args)
    return report(shadow_args, version.version if version else None, source.shadow_scored(shadow_args), rules)


def auto_promote(registry: ModelRegistry, shadow_report: ShadowReport, min_events: int) -> ModelChange | None:
    """Promote the shadow if its SNIPS lower bound beats what the served policies earned.

    Off unless ``XSELL_AUTO_PROMOTE`` is set: an operator should normally decide.
    """
    if shadow_report.version is None or shadow_report.active is None or shadow_report.n < min_events:
        return None
    snips = next(e for e in shadow_report.estimates if e.estimator == "SNIPS")
    if snips.low <= shadow_report.active.value:
        return None
    reason = (
        f"SNIPS lower bound {snips.low:.4f} beats the served policies' {shadow_report.active.value:.4f} "
        f"over {shadow_report.n} decisions"
    )
    return registry.promote(shadow_report.version, actor="auto-promote", reason=reason)
