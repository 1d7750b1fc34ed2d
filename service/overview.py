"""What operators see about models: versions, their recent online metrics, the shadow.

Shared by ``GET /v1/models`` and ``xsell models list`` so both say the same thing.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import asdict
from typing import Any

import numpy as np

from logs.store import LogStore
from policies.learning.registry import ModelRegistry
from policies.learning.rewards import RewardRules
from policies.learning.shadow import live_report
from service.effective import effective
from service.settings import Settings

__all__ = ["models_overview"]

RECENT_EVENTS = 20_000


def models_overview(
    store: LogStore, registry: ModelRegistry, settings: Settings, *, limit: int = 20
) -> dict[str, Any]:
    """Return the newest `limit` versions (plus the active one and every candidate) with metrics.

    Metrics come from the newest decisions whose reward window has ended (at most
    20,000): per version, how many it served and their mean reward with a 95% normal
    interval (none from fewer than two decisions: one reward says nothing of spread).
    """
    rules = effective(settings, registry.index).rules  # the rules the learner and guardrail use
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
        # Online metrics count only decisions whose reward window has ended: an answered
        # decision and a silent one are counted alike, so early figures are not inflated.
        "decisions_within_window": store.decisions_within_window(),
        "shadow": None,
    }
    overview["shadow"] = shadow_summary(store, registry, settings, rules)
    return overview


def _recent_metrics(store: LogStore, rules: RewardRules) -> dict[str, dict[str, float | None]]:
    events = store.recent_closed_events(limit=RECENT_EVENTS, created_after=float("-inf"))
    rewards: dict[str, list[float]] = defaultdict(list)
    for event in events:
        rewards[event.model_version].append(sum(rules.slot_rewards(event)))
    metrics = {}
    for version, values in rewards.items():
        array = np.asarray(values)
        mean = float(array.mean())
        half = 1.96 * float(array.std(ddof=1)) / float(np.sqrt(len(array))) if len(array) > 1 else None
        metrics[version] = {
            "decisions": len(array),
            "mean_reward": mean,
            "low": None if half is None else mean - half,
            "high": None if half is None else mean + half,
        }
    return metrics


def shadow_summary(
    store: LogStore, registry: ModelRegistry, settings: Settings, rules: RewardRules
) -> dict[str, Any] | None:
    """Return the shadow's live report as GET /v1/models and the console show it (None: no shadow)."""
    if not settings.shadow_vw_args:
        return None
    found = live_report(store, registry, settings.shadow_vw_args, rules)
    return {
        "vw_args": found.shadow,
        "version": found.version,
        "decisions_scored": found.n,
        "agreement": found.agreement,
        "served": asdict(found.active) if found.active else None,
        "estimates": [asdict(e) for e in found.estimates],
        "auto_promote": settings.auto_promote,
    }
