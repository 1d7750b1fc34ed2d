"""The guardrail: roll back on its own when the served model's reward falls.

Every ``check_seconds`` the learner compares the mean reward of the newest
``window_events`` settled decisions (*recent*) with the ``window_events`` before
them (*baseline*, served by the previous versions). Settled means made at least a
reward window ago (the window in force now, as the learner and the evaluator see it),
so every one has closed and silent decisions count as much as those that got
feedback. Rewards follow the reward rules in force, so an operator's change of the
default reward reaches the guardrail's judgement and the learner alike. It fires when

- both windows hold at least ``min_events`` decisions,
- the recent mean is lower by at least ``min_relative_drop`` of the baseline mean,
- and a one-sided Welch z-test rejects "recent ≥ baseline" at ``level``:

.. math:: z = (\\bar r_b - \\bar r_r) / \\sqrt{s_b^2 / n_b + s_r^2 / n_r} > z_{1-level}

Firing rolls back to the newest kept version that served the baseline window,
records the verdict as the reason, and logs it at ERROR. Only decisions made after
the last change of the active model count, so one drop fires once and a rollback
is judged on fresh evidence.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import NormalDist
from typing import Protocol

import numpy as np

from policies.base import LoggedEvent
from policies.deciding.live_config import InForceSource
from policies.learning.registry import ModelChange, ModelRegistry, RegistryError
from policies.learning.rewards import RewardRules

__all__ = ["Guardrail", "GuardrailOptions", "Verdict", "compare"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class GuardrailOptions:
    enabled: bool = True
    window_events: int = 2000
    min_events: int = 500
    level: float = 0.01
    min_relative_drop: float = 0.1
    check_seconds: float = 10.0
    # only decisions older than the reward window in force plus this are compared: all
    # of them have closed, so the windows are not skewed towards events that got
    # feedback (those close early)
    grace_seconds: float = 0.5


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of one comparison, worded for the change log."""

    fired: bool
    z: float
    baseline_mean: float
    recent_mean: float
    baseline_n: int
    recent_n: int

    @property
    def reason(self) -> str:
        return (
            f"reward fell from {self.baseline_mean:.4f} (n={self.baseline_n}) to {self.recent_mean:.4f} "
            f"(n={self.recent_n}), z={self.z:.2f}"
        )


def compare(baseline: np.ndarray, recent: np.ndarray, options: GuardrailOptions) -> Verdict:
    """Return whether `recent` rewards are significantly and materially below `baseline`."""
    n_b, n_r = len(baseline), len(recent)
    if n_b < max(options.min_events, 2) or n_r < max(options.min_events, 2):
        return Verdict(False, 0.0, _mean(baseline), _mean(recent), n_b, n_r)
    mean_b, mean_r = float(baseline.mean()), float(recent.mean())
    variance = float(baseline.var(ddof=1)) / n_b + float(recent.var(ddof=1)) / n_r
    # identical rewards in both windows: any drop is certain, no drop is none
    degenerate = math.inf if mean_b > mean_r else 0.0
    z = (mean_b - mean_r) / math.sqrt(variance) if variance > 0 else degenerate
    critical = NormalDist().inv_cdf(1 - options.level)
    material = mean_b - mean_r >= options.min_relative_drop * abs(mean_b)
    return Verdict(bool(z > critical and material), z, mean_b, mean_r, n_b, n_r)


def _mean(values: np.ndarray) -> float:
    return float(values.mean()) if len(values) else 0.0


class RecentEventSource(Protocol):
    def recent_closed_events(
        self, *, limit: int, created_after: float, created_before: float | None = None
    ) -> list[LoggedEvent]:
        """Return up to `limit` closed events made in (created_after, created_before], newest first."""
        ...


class Guardrail:
    """Run `compare` on the log and roll back when it fires."""

    def __init__(
        self,
        source: RecentEventSource,
        registry: ModelRegistry,
        config: InForceSource,
        options: GuardrailOptions,
        *,
        clock: Callable[[], float] = time.time,
    ):
        self.source = source
        self.registry = registry
        self.config = config  # the configuration in force: reward rules and reward window
        self.options = options
        self.clock = clock

    def check(self) -> ModelChange | None:
        """Compare the two windows; roll back and return the change if the guardrail fires."""
        if not self.options.enabled:
            return None
        in_force = self.config.current()
        changes = self.registry.index.changes(limit=1)
        since = changes[0].at if changes else float("-inf")
        settled = in_force.live.reward_window_seconds + self.options.grace_seconds
        events = self.source.recent_closed_events(
            limit=2 * self.options.window_events,
            created_after=since,
            created_before=self.clock() - settled,
        )
        window = self.options.window_events
        recent, baseline = events[:window], events[window:]
        verdict = compare(_rewards(baseline, in_force.rules), _rewards(recent, in_force.rules), self.options)
        if not verdict.fired:
            return None
        target = self._target(baseline)
        log.error("guardrail: %s; rolling back to %s", verdict.reason, target)
        try:
            return self.registry.rollback(
                to=target, actor="guardrail", reason=verdict.reason, action="guardrail"
            )
        except RegistryError as error:
            log.error("guardrail fired but cannot roll back: %s", error)
            return None

    def _target(self, baseline: Sequence[LoggedEvent]) -> str:
        """Return the newest kept version no newer than the one that served the baseline's start."""
        oldest = min(baseline, key=lambda e: e.created_at)
        served = self.registry.index.find(oldest.model_version)
        limit = served.seq if served else 0
        for model in self.registry.index.versions():  # newest first
            if model.seq <= limit and model.state != "candidate" and self.registry.has_file(model):
                return model.version
        raise RegistryError(f"no kept model file at or before {oldest.model_version}")


def _rewards(events: Sequence[LoggedEvent], rules: RewardRules) -> np.ndarray:
    return np.array(
        [sum(rules.slot_rewards(e)) for e in events],
        dtype=np.float64,
    )
