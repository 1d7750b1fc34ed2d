"""Drift alarms: has what the service sees, or what it earns, moved away from a reference?

Two checks, each comparing a recent window with the reference window just before it:

- **Context features**, per namespace: the population stability index over hashed
  feature buckets (``logs/rollups.py`` hashes every ``name=value`` token, numbers in
  power-of-two bins, into 32 buckets per namespace),

  .. math:: \\mathrm{PSI} = \\sum_b (p_b - q_b) \\ln(p_b / q_b)

  with ``p`` the recent and ``q`` the reference share of each bucket (both floored at
  ``epsilon`` so an empty bucket is finite). The usual reading, used here: below 0.1
  no shift, 0.1 to 0.2 a moderate shift (warn), above 0.2 a major one (alarm).
- **Reward rate**: Welch's z test of the recent against the reference mean reward per
  decision, over decisions whose reward window ended, two-sided at level 0.01.

A window with too few decisions gives ``insufficient``, never a verdict. The checks
read sufficient statistics only (bucket counts; n, sum and sum of squares), so their
cost does not grow with the log. docs/drift.md says how to read and tune them.

References
----------
Yurdakul, B. (2018). Statistical properties of population stability index. PhD
thesis, Western Michigan University.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Protocol

__all__ = [
    "DriftMonitor",
    "DriftOptions",
    "DriftResult",
    "DriftSource",
    "RewardTotals",
    "check_features",
    "check_reward",
    "psi",
    "welch",
]

log = logging.getLogger(__name__)
STATUSES = ("ok", "insufficient", "warn", "alarm")  # gauge values 0, 0, 1, 2 in /metrics


@dataclass(frozen=True, slots=True)
class DriftOptions:
    """Windows and thresholds (docs/drift.md)."""

    recent_minutes: int = 15
    reference_minutes: int = 24 * 60
    # per window, for the feature check: with k buckets filled, PSI from noise alone is about
    # (k - 1) * (1/n_recent + 1/n_reference), under 0.04 for 32 buckets and 1,000 decisions
    min_decisions: int = 1000
    min_ended: int = 200  # per window, for the reward check
    psi_warn: float = 0.1
    psi_alarm: float = 0.2
    reward_level: float = 0.01  # two-sided
    epsilon: float = 1e-4


@dataclass(frozen=True, slots=True)
class RewardTotals:
    """Sufficient statistics of rewards over a window: n, sum and sum of squares."""

    n: int
    total: float
    squares: float


@dataclass(frozen=True, slots=True)
class DriftResult:
    kind: str  # "features" or "reward"
    subject: str  # the namespace, or "reward"
    score: float | None  # PSI, or Welch's z
    p_value: float | None
    status: str  # one of STATUSES
    recent_n: int
    reference_n: int
    detail: dict[str, object] = field(default_factory=dict)


def psi(recent: Mapping[int, float], reference: Mapping[int, float], epsilon: float = 1e-4) -> float:
    """Return the population stability index of two bucket histograms (counts or shares).

    >>> psi({0: 50, 1: 50}, {0: 50, 1: 50})
    0.0
    >>> round(psi({0: 90, 1: 10}, {0: 50, 1: 50}), 3)
    0.879
    """
    return sum(contributions(recent, reference, epsilon).values())


def contributions(
    recent: Mapping[int, float], reference: Mapping[int, float], epsilon: float = 1e-4
) -> dict[int, float]:
    """Return each bucket's term of the PSI sum."""
    recent_total = sum(recent.values()) or 1.0
    reference_total = sum(reference.values()) or 1.0
    terms = {}
    for bucket in set(recent) | set(reference):
        p = max(recent.get(bucket, 0.0) / recent_total, epsilon)
        q = max(reference.get(bucket, 0.0) / reference_total, epsilon)
        terms[bucket] = (p - q) * math.log(p / q)
    return terms


def welch(recent: RewardTotals, reference: RewardTotals) -> tuple[float, float]:
    """Return Welch's z statistic (recent minus reference) and its two-sided p-value.

    >>> z, p = welch(RewardTotals(400, 200.0, 200.0), RewardTotals(400, 200.0, 200.0))
    >>> (z, p)
    (0.0, 1.0)
    """
    mean_r, var_r = _moments(recent)
    mean_b, var_b = _moments(reference)
    spread = math.sqrt(var_r / recent.n + var_b / reference.n)
    if spread == 0:
        z = 0.0 if mean_r == mean_b else math.copysign(math.inf, mean_r - mean_b)
    else:
        z = (mean_r - mean_b) / spread
    p = 2 * (1 - NormalDist().cdf(abs(z))) if math.isfinite(z) else 0.0
    return z, p


def _moments(totals: RewardTotals) -> tuple[float, float]:
    mean = totals.total / totals.n
    if totals.n < 2:
        return mean, 0.0
    variance = max(totals.squares - totals.n * mean * mean, 0.0) / (totals.n - 1)
    return mean, variance


def check_features(
    recent: Mapping[str, Mapping[int, float]],
    reference: Mapping[str, Mapping[int, float]],
    decisions: tuple[int, int],
    options: DriftOptions,
    examples: Mapping[tuple[str, int], str] | None = None,
) -> list[DriftResult]:
    """Compare each namespace's bucket histogram; `decisions` is (recent, reference) decision counts.

    A namespace that vanished or appeared counts as a major shift (its buckets all
    move), which is what an operator needs to hear about.
    """
    results = []
    enough = min(decisions) >= options.min_decisions
    for namespace in sorted(set(recent) | set(reference)):
        now, before = recent.get(namespace, {}), reference.get(namespace, {})
        counts = (int(sum(now.values())), int(sum(before.values())))
        if not enough:
            results.append(DriftResult("features", namespace, None, None, "insufficient", *decisions))
            continue
        terms = contributions(now, before, options.epsilon)
        score = sum(terms.values())
        status = "alarm" if score > options.psi_alarm else "warn" if score > options.psi_warn else "ok"
        moved = sorted(terms, key=lambda b: -terms[b])[:5]
        detail: dict[str, object] = {
            "tokens": {"recent": counts[0], "reference": counts[1]},
            "moved": [
                {
                    "bucket": b,
                    "feature": (examples or {}).get((namespace, b), ""),
                    "recent_share": now.get(b, 0.0) / (counts[0] or 1),
                    "reference_share": before.get(b, 0.0) / (counts[1] or 1),
                    "contribution": terms[b],
                }
                for b in moved
                if terms[b] > 0
            ],
        }
        results.append(DriftResult("features", namespace, score, None, status, *decisions, detail))
    return results


def check_reward(recent: RewardTotals, reference: RewardTotals, options: DriftOptions) -> DriftResult:
    """Test whether the recent mean reward differs from the reference one."""
    if min(recent.n, reference.n) < options.min_ended:
        return DriftResult("reward", "reward", None, None, "insufficient", recent.n, reference.n)
    z, p = welch(recent, reference)
    detail: dict[str, object] = {
        "recent_mean": recent.total / recent.n,
        "reference_mean": reference.total / reference.n,
        "level": options.reward_level,
    }
    status = "alarm" if p < options.reward_level else "ok"
    return DriftResult("reward", "reward", z, p, status, recent.n, reference.n, detail)


class DriftSource(Protocol):
    """What the monitor reads and writes (``service.drift_chore`` wires the rollups in)."""

    def feature_counts(
        self, first_minute: int, end_minute: int
    ) -> tuple[dict[str, dict[int, float]], dict[tuple[str, int], str], int]: ...

    def reward_totals(self, first_minute: int, end_minute: int) -> RewardTotals: ...

    def ended_until_minute(self) -> int | None: ...

    def record(self, at: float, results: Sequence[DriftResult], windows: Mapping[str, object]) -> None: ...


class DriftMonitor:
    """Run both checks over the rollups and log every change of status (a learner chore)."""

    def __init__(self, source: DriftSource, options: DriftOptions, *, clock: Callable[[], float]):
        self.source = source
        self.options = options
        self.clock = clock
        self._status: dict[str, str] = {}

    def check(self) -> list[DriftResult]:
        """Compare the recent windows with the reference ones, record and log the results."""
        now = self.clock()
        o = self.options
        end = int(now // 60)  # the current minute is still filling: left out
        start = end - o.recent_minutes
        recent, examples, recent_n = self.source.feature_counts(start, end)
        reference, more, reference_n = self.source.feature_counts(start - o.reference_minutes, start)
        results = check_features(recent, reference, (recent_n, reference_n), o, {**more, **examples})
        windows: dict[str, object] = {"features": [start - o.reference_minutes, start, end]}
        ended = self.source.ended_until_minute()
        if ended is None:
            results.append(DriftResult("reward", "reward", None, None, "insufficient", 0, 0))
        else:
            split = ended - o.recent_minutes
            results.append(
                check_reward(
                    self.source.reward_totals(split, ended),
                    self.source.reward_totals(split - o.reference_minutes, split),
                    o,
                )
            )
            windows["reward"] = [split - o.reference_minutes, split, ended]
        self.source.record(now, results, windows)
        for result in results:
            self._log(result)
        return results

    def _log(self, result: DriftResult) -> None:
        key = f"{result.kind}:{result.subject}"
        before = self._status.get(key)
        self._status[key] = result.status
        if result.status in ("warn", "alarm") and before != result.status:
            log.warning(
                "drift %s on %s %s: score %.3g (recent n=%d, reference n=%d)",
                result.status.upper(),
                result.kind,
                result.subject,
                result.score if result.score is not None else float("nan"),
                result.recent_n,
                result.reference_n,
            )
        elif before in ("warn", "alarm") and result.status == "ok":
            log.info("drift cleared on %s %s", result.kind, result.subject)
