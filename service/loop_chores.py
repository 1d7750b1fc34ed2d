"""The learner's health chores: keep the rollups, estimate other policies per hour, check drift.

``scripts/learn.py`` runs each as a learner chore; ``xsell bench console`` and the
tests call them directly with a clock of their own.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from logs.health_store import HealthStore
from logs.rollup_queries import RollupReader
from logs.rollups import RollProgress, Rollups
from logs.store import LogStore
from policies.deciding.live_config import InForceSource
from policies.evaluation.candidates import MostPopular, uniform
from policies.evaluation.dataset import LoggedDecision
from policies.evaluation.estimators import SelfNormalizedIPS
from policies.evaluation.replay import EvaluationOptions, evaluate_log
from policies.learning.drift import DriftMonitor, DriftOptions, DriftResult, RewardTotals
from policies.learning.rewards import RewardRules

__all__ = ["HealthChores", "RollupDriftSource", "learner_chores"]

log = logging.getLogger(__name__)
Rules = Callable[[], RewardRules]  # the reward rules in force now
Window = Callable[[], float]  # the reward window in force now, seconds
Chore = tuple[float, Callable[[], object]]  # (every_seconds, job), as the Learner takes them


class RollupDriftSource:
    """The drift monitor's view of the rollups (policies/learning/drift.DriftSource)."""

    def __init__(self, store: LogStore, window_seconds: Window):
        self.reader = RollupReader(store)
        self.health = HealthStore(store)
        self.window_seconds = window_seconds

    def feature_counts(
        self, first_minute: int, end_minute: int
    ) -> tuple[dict[str, dict[int, float]], dict[tuple[str, int], str], int]:
        counts: dict[str, dict[int, float]] = defaultdict(dict)
        examples = {}
        for row in self.reader.features(first_minute, end_minute):
            counts[row["namespace"]][row["bucket"]] = float(row["count"])
            examples[(row["namespace"], row["bucket"])] = row["example"]
        decisions = int(self.reader.reward_totals(first_minute, end_minute)["decisions"])
        return dict(counts), examples, decisions

    def reward_totals(self, first_minute: int, end_minute: int) -> RewardTotals:
        row = self.reader.reward_totals(first_minute, end_minute)
        return RewardTotals(int(row["n"]), float(row["total"]), float(row["squares"]))

    def ended_until_minute(self) -> int | None:
        """The first minute not all of whose decisions have ended (by the rollups' watermark)."""
        ended = self.reader.watermarks().ended_closes_at
        if not math.isfinite(ended):
            return None
        return int((ended - self.window_seconds()) // 60)

    def record(self, at: float, results: Sequence[DriftResult], windows: Mapping[str, object]) -> None:
        self.health.record_drift(at, results, windows)


@dataclass
class HealthChores:
    """The three chores, sharing one store and the configuration in force."""

    store: LogStore
    rules: Rules
    window_seconds: Window
    grace_seconds: float
    drift_options: DriftOptions = DriftOptions()
    sample_size: int = 500  # decisions per hour the estimates replay: bounded work
    hours_per_run: int = 2
    lookback_hours: int = 7 * 24

    def __post_init__(self) -> None:
        self.rollups = Rollups(self.store)
        self.health = HealthStore(self.store)
        self.drift = DriftMonitor(
            RollupDriftSource(self.store, self.window_seconds), self.drift_options, clock=self.store.clock
        )

    def roll(self, max_rows: int = 50_000, budget_seconds: float | None = None) -> RollProgress:
        """Bring the rollups up to date (at most `max_rows` rows per pass, `budget_seconds` in all)."""
        return self.rollups.roll(
            now=self.store.clock(),
            grace_seconds=self.grace_seconds,
            reward_of=self.rules().reward_for,
            max_rows=max_rows,
            page=500,
            budget_seconds=budget_seconds,
        )

    def estimate(self, hours: int | None = None) -> int:
        """Estimate the logged, uniform and most-popular policies on hours whose windows all ended."""
        now = self.store.clock()
        ended_before = now - self.window_seconds() - self.grace_seconds
        pending = self.health.hours_to_estimate(
            first_hour=int(now // 3600) - self.lookback_hours, ended_before=ended_before
        )
        rules = self.rules()
        done = 0
        for hour in pending[: hours or self.hours_per_run]:
            events, total = self.health.sample_events(
                hour, closed_before=now - self.grace_seconds, size=self.sample_size
            )
            decisions = [
                LoggedDecision(e, rules.slot_rewards(e))
                for e in events
                if e.choices and all(0 < (c.probability or 0) <= 1 for c in e.choices)
            ]
            self.health.record_estimates(hour, _estimates(decisions), decisions=total, at=now)
            done += 1
        return done

    def check_drift(self) -> list[DriftResult]:
        """Run the drift checks (logged by the monitor, recorded in the log)."""
        return self.drift.check()

    def chores(
        self, *, roll_seconds: float = 1.0, estimate_seconds: float = 60.0, drift_seconds: float = 60.0
    ) -> list[Chore]:
        """The (every_seconds, job) pairs the learner runs between steps."""
        return [
            # a quarter second a second at most: learning goes on while a large log is caught up
            (roll_seconds, lambda: self.roll(budget_seconds=0.25)),
            (estimate_seconds, self.estimate),
            (drift_seconds, self.check_drift),
        ]


def _estimates(decisions: Sequence[LoggedDecision]) -> list[tuple[str, str, float, float, float, int]]:
    """SNIPS of uniform and most-popular beside the logged mean, on the same decisions."""
    if not decisions:
        return [("logged", "none", 0.0, 0.0, 0.0, 0)]
    options = EvaluationOptions(estimators=(SelfNormalizedIPS(),), reward_model=None)
    found = evaluate_log(decisions, [uniform(), MostPopular()], options)
    rows = []
    for report in found.reports:
        for estimate in report.estimates:
            rows.append(
                (report.policy, estimate.estimator, estimate.value, estimate.low, estimate.high, estimate.n)
            )
    return rows


def learner_chores(store: LogStore, config: InForceSource, *, grace_seconds: float) -> list[Chore]:
    """The health chores as the learner runs them, reading the configuration in force."""
    chores = HealthChores(
        store,
        rules=lambda: config.current().rules,
        window_seconds=lambda: config.current().live.reward_window_seconds,
        grace_seconds=grace_seconds,
    )
    return [(every, _guarded(job)) for every, job in chores.chores()]


def _guarded(job: Callable[[], object]) -> Callable[[], object]:
    """Run a health chore so that its failure is logged, never stops learning."""

    def run() -> object:
        try:
            return job()
        except Exception:
            log.exception("health chore %s failed; learning goes on", getattr(job, "__name__", job))
            return None

    return run
