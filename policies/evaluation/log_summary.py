"""What the log says about itself: reward over time per model version, and how
often the served policy explored."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from policies.evaluation.dataset import LoggedDecision

__all__ = ["LogSummary", "Series", "summarise"]


@dataclass(frozen=True, slots=True)
class Series:
    """Mean values per time bucket (bucket midpoints in seconds since the epoch)."""

    name: str
    times: tuple[float, ...]
    values: tuple[float, ...]
    counts: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class LogSummary:
    decisions: int
    first_at: float
    last_at: float
    reward_by_version: tuple[Series, ...]
    # share of decisions whose first offer was not the policy's most likely one;
    # None when the log did not keep the logging distribution (imported logs)
    exploration: Series | None


def summarise(decisions: Sequence[LoggedDecision], buckets: int = 20, max_series: int = 10) -> LogSummary:
    """Return per-bucket mean reward per model version (or range of versions), and exploration."""
    if not decisions:
        raise ValueError("no decisions to summarise")
    times = np.array([d.event.created_at for d in decisions])
    rewards = np.array([sum(d.rewards) for d in decisions])
    edges = np.linspace(times.min(), times.max() + 1e-9, buckets + 1)
    bucket = np.clip(np.searchsorted(edges, times, side="right") - 1, 0, buckets - 1)
    middles = (edges[:-1] + edges[1:]) / 2
    versions = np.array([d.event.model_version for d in decisions])
    # The learner publishes a version every few seconds; past `max_series` lines a
    # plot says nothing, so consecutive versions are grouped into ranges.
    ordered = sorted(set(versions.tolist()), key=_version_order)
    groups = np.array_split(np.array(ordered, dtype=object), min(len(ordered), max_series))
    series = []
    for group in groups:
        name = str(group[0]) if len(group) == 1 else f"{group[0]}–{group[-1]}"
        chosen = np.isin(versions, group.astype(str))
        series.append(_series(name, middles, bucket[chosen], rewards[chosen]))
    exploration = None
    known = [d.logged_distribution_known for d in decisions]
    if all(known):
        explored = np.array([_explored(d) for d in decisions], dtype=np.float64)
        exploration = _series("exploration share", middles, bucket, explored)
    return LogSummary(len(decisions), float(times.min()), float(times.max()), tuple(series), exploration)


def _series(name: str, middles: np.ndarray, bucket: np.ndarray, values: np.ndarray) -> Series:
    counts = np.bincount(bucket, minlength=len(middles))
    sums = np.bincount(bucket, weights=values, minlength=len(middles))
    filled = counts > 0
    return Series(
        name,
        tuple(middles[filled].tolist()),
        tuple((sums[filled] / counts[filled]).tolist()),
        tuple(counts[filled].tolist()),
    )


def _explored(decision: LoggedDecision) -> bool:
    event = decision.event
    greedy = int(np.argmax(event.probabilities))
    return event.actions[greedy].id != event.choices[0].action_id


def _version_order(version: str) -> tuple[int, str]:
    digits = version.removeprefix("v")
    return (int(digits), version) if digits.isdigit() else (1 << 62, version)
