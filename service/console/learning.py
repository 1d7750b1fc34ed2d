""" "Is it learning?": mean reward over time per model version, beside uniform and most popular.

Over the newest closed decisions of a window, per time bucket: the mean reward the
served versions earned (a 95% normal interval), and what uniform random and
most-popular (learned progressively over the same decisions) would have earned,
estimated from the log by SNIPS with its 95% normal interval. Only decisions whose
reward window ended count, so no bucket looks better because its feedback came first.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from logs.store import LogStore
from policies.deciding.baselines import UniformPolicy
from policies.evaluation.candidates import Fixed, MostPopular
from policies.evaluation.dataset import LoggedDecision
from policies.evaluation.estimators import EvalBatch, Normal, SelfNormalizedIPS
from policies.evaluation.replay import replay
from policies.learning.rewards import RewardRules

__all__ = ["BUCKETS", "LIMIT", "chart"]

BUCKETS = 12
LIMIT = 500  # newest closed decisions replayed per view: bounded work whatever the log holds
MAX_SERIES = 6


def chart(store: LogStore, rules: RewardRules, now: float, window_seconds: float) -> dict[str, Any]:
    """Return bucket times, one series per version group and the two baselines, each with intervals."""
    since = now - window_seconds
    events = store.recent_closed_events(limit=LIMIT, created_after=since, created_before=now)
    decisions = sorted(
        (LoggedDecision(e, rules.slot_rewards(e)) for e in events),
        key=lambda d: (d.event.created_at, d.event.event_id),
    )
    # Buckets span the decisions found (at most the window), so a young log still gets a line.
    first = decisions[0].event.created_at if decisions else since
    last = decisions[-1].event.created_at if decisions else now
    edges = np.linspace(first, last + 1e-6, BUCKETS + 1)
    found: dict[str, Any] = {
        "times": ((edges[:-1] + edges[1:]) / 2).tolist(),
        "bucket_seconds": float(edges[1] - edges[0]),
        "decisions": len(decisions),
        "capped": len(events) == LIMIT,
        "unit": "mean reward per decision (all slots)",
        "series": [],
        "baselines": [],
        "totals": [],
    }
    if not decisions:
        return found
    times = np.array([d.event.created_at for d in decisions])
    bucket = np.clip(np.searchsorted(edges, times, side="right") - 1, 0, BUCKETS - 1)
    rewards = np.array([sum(d.rewards) for d in decisions])
    versions = np.array([d.event.model_version for d in decisions])
    for name, chosen in _version_groups(versions):
        found["series"].append({"name": name, **_means(bucket[chosen], rewards[chosen])})
        found["totals"].append({"name": f"served by {name}", **_interval(rewards[chosen])})
    for label, candidate in (
        ("uniform random", Fixed("uniform", UniformPolicy())),
        ("most popular", MostPopular()),
    ):
        batch = replay(decisions, candidate, None)
        if batch is None:
            continue
        found["baselines"].append({"name": label, **_estimates(batch, bucket)})
        whole = SelfNormalizedIPS().estimate(batch, Normal())
        found["totals"].append(
            {
                "name": f"{label} (SNIPS)",
                "n": whole.n,
                "mean": whole.value,
                "low": whole.low,
                "high": whole.high,
            }
        )
    return found


def _version_groups(versions: np.ndarray) -> list[tuple[str, np.ndarray]]:
    # The learner publishes a version every few seconds; consecutive ones are grouped so
    # the chart keeps a handful of lines.
    ordered = sorted(set(versions.tolist()), key=_version_order)
    groups = np.array_split(np.array(ordered, dtype=object), min(len(ordered), MAX_SERIES))
    return [
        (str(g[0]) if len(g) == 1 else f"{g[0]}–{g[-1]}", np.isin(versions, g.astype(str))) for g in groups
    ]


def _version_order(version: str) -> tuple[int, str]:
    digits = version.removeprefix("v")
    return (int(digits), version) if digits.isdigit() else (1 << 62, version)


def _interval(values: np.ndarray) -> dict[str, Any]:
    mean = float(values.mean()) if len(values) else None
    if len(values) < 2 or mean is None:
        return {"n": int(len(values)), "mean": mean, "low": None, "high": None}
    half = 1.96 * float(values.std(ddof=1)) / float(np.sqrt(len(values)))
    return {"n": int(len(values)), "mean": mean, "low": mean - half, "high": mean + half}


def _means(bucket: np.ndarray, values: np.ndarray) -> dict[str, list[Any]]:
    rows = [_interval(values[bucket == b]) for b in range(BUCKETS)]
    return {key: [r[key] for r in rows] for key in ("mean", "low", "high", "n")}


def _estimates(batch: EvalBatch, bucket: np.ndarray) -> dict[str, list[Any]]:
    rows: dict[str, list[Any]] = {"mean": [], "low": [], "high": [], "n": []}
    for b in range(BUCKETS):
        chosen = bucket == b
        if not chosen.any():
            for key in rows:
                rows[key].append(None if key != "n" else 0)
            continue
        part = EvalBatch(
            batch.reward[chosen], batch.p_log[chosen], batch.p_target[chosen], batch.mask[chosen]
        )
        found = SelfNormalizedIPS().estimate(part, Normal())
        rows["mean"].append(found.value)
        rows["low"].append(found.low)
        rows["high"].append(found.high)
        rows["n"].append(found.n)
    return rows
