"""What operators see about models: versions, their recent online metrics, the shadow.

Shared by ``GET /v1/models`` and ``xsell models list`` so both say the same thing.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict
from typing import Any

import numpy as np

from logs.store import LogStore
from policies.registry import ModelRegistry
from policies.rewards import RewardRules
from policies.shadow import live_report
from service.settings import Settings

__all__ = ["models_overview"]

RECENT_EVENTS = 20_000


def models_overview(
    store: LogStore, registry: ModelRegistry, settings: Settings, *, limit: int = 20
) -> dict[str, Any]:
    """Return the newest `limit` versions (plus the active one and every candidate) with metrics.

    Metrics come from the newest closed decisions (at most 20,000): per version, how
    many it served and their mean reward with a 95% normal interval.
    """
    rules = settings.reward_rules()
    versions = registry.index.versions()
    active = registry.active()
    shown = versions[:limit] + [m for m in versions[limit:] if m.state in ("active", "candidate")]
    metrics = _recent_metrics(store, rules)
    rows = []
    for model in shown:
        row = asdict(model)
        row["file_kept"] = registry.has_file(model)
        row["online"] = metrics.get(model.version)
        rows.append(row)
    overview: dict[str, Any] = {
        "active": active.version if active else None,
        "learning_frozen": registry.learning_frozen(),
        "versions_total": len(versions),
        "versions": rows,
        "changes": [asdict(c) for c in registry.index.changes(limit=20)],
        "shadow": None,
    }
    if settings.shadow_vw_args:
        found = live_report(store, registry, settings.shadow_vw_args, rules)
        overview["shadow"] = {
            "vw_args": found.shadow,
            "version": found.version,
            "decisions_scored": found.n,
            "agreement": found.agreement,
            "served": asdict(found.active) if found.active else None,
            "estimates": [asdict(e) for e in found.estimates],
            "auto_promote": settings.auto_promote,
        }
    return overview


def _recent_metrics(store: LogStore, rules: RewardRules) -> dict[str, dict[str, float]]:
    events = store.recent_closed_events(limit=RECENT_EVENTS, created_after=float("-inf"))
    rewards: dict[str, list[float]] = defaultdict(list)
    for event in events:
        rewards[event.model_version].append(
            sum(rules.reward_for(event.feedback, c.action_id) for c in event.choices)
        )
    metrics = {}
    for version, values in rewards.items():
        array = np.asarray(values)
        half = 1.96 * float(array.std(ddof=1)) / float(np.sqrt(len(array))) if len(array) > 1 else 0.0
        mean = float(array.mean())
        metrics[version] = {
            "decisions": len(array),
            "mean_reward": mean,
            "low": mean - half,
            "high": mean + half,
        }
    return metrics
