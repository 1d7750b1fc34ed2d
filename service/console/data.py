"""Everything the console pages show, as plain dicts: the one place the pages get figures from.

The pages never query the log themselves, so when cheaper sources arrive (rollups
kept by the learner) only this module changes. Every figure carries its unit, its
window and whether it is stale; outcome figures count only decisions whose reward
window has ended (``closes_at <= now``).
"""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import Any

from logs.evaluation_store import EvaluationStore
from logs.rollup_queries import RollupReader
from logs.rollup_queries import detail as drift_detail
from policies.base import Feedback
from service import http_metrics
from service import loop_health as loop_health_view
from service.console import learning, queries
from service.console.filters import utc
from service.overview import shadow_summary
from service.resources import Resources

__all__ = ["drift", "event", "evaluations", "learning_chart", "loop_health", "models", "offers", "settings"]

DRIFT_STALE_SECONDS = 300.0


def _figure(found: loop_health_view.Figure) -> dict[str, Any]:
    stale = None
    if found.is_stale:
        behind = (
            "nothing rolled up yet"
            if not math.isfinite(found.age_seconds)
            else (f"{found.age_seconds:.0f} s behind")
        )
        stale = f"true as of {utc(found.as_of)} ({behind}): is the learner running?"
    return {
        "value": found.value,
        "unit": found.unit,
        "window": found.window,
        "stale": stale,
        "note": found.note,
        "as_of": found.as_of,
    }


def loop_health(res: Resources, now: float, window_seconds: float) -> dict[str, Any]:
    """Return the loop's health over the last `window_seconds` from the learner's rollups."""
    minutes = max(1, round(window_seconds / 60))
    grace = res.settings.learner_grace_seconds
    found = loop_health_view.loop_health(res.store, now=now, window_minutes=minutes, grace_seconds=grace)
    histogram = found.delay_histogram
    low = 0.0
    buckets = []
    for row in histogram:
        buckets.append({"low": low, "high": row["le"], "count": int(row["count"])})
        low = row["le"]
    return {
        "window": f"last {minutes} min",
        "figures": {name: _figure(f) for name, f in found.figures.items()},
        "delays": {
            "unit": "seconds from offer to feedback post, every signal",
            "window": f"last {minutes} min",
            "n": sum(b["count"] for b in buckets),
            "buckets": buckets,
        },
        "per_minute": {
            "times": [m["minute_start"] for m in found.per_minute],
            "decisions": [m["decisions"] for m in found.per_minute],
            "feedback": [m["feedback"] for m in found.per_minute],
            "late": [m["late"] for m in found.per_minute],
        },
        "signals": found.feedback_by_signal,
        "errors": found.errors,
        "scope": http_metrics.scope(),
        "within_window": res.store.decisions_within_window(now),
    }


def learning_chart(res: Resources, now: float, window_seconds: float) -> dict[str, Any]:
    """Return reward over the window per version beside uniform and most popular, and the same now.

    ``window``: every ended decision of the window from the rollups, per bucket and version,
    with the learner's per-hour estimates of uniform and most popular. ``recent``: the
    newest closed decisions replayed now (bounded), so a young log has an answer too.
    """
    current = res.config.current()
    recent = learning.chart(res.store, current.rules, now, window_seconds)
    hours = max(1, math.ceil(window_seconds / 3600))
    grace = res.settings.learner_grace_seconds
    view = loop_health_view.learning(
        res.store,
        now=now,
        window_hours=hours,
        grace_seconds=grace,
        reward_window_seconds=current.live.reward_window_seconds,
    )
    return {
        "recent": recent,
        "window": _window_chart(view),
        "hourly": view.compared,
        "hours": hours,
        "since": view.since,
    }


def _window_chart(view: loop_health_view.LearningView) -> dict[str, Any]:
    """Align the versions' buckets and the hourly estimates on one time axis (None where absent)."""
    half_bucket = view.bucket_minutes * 30.0
    points = {s.name: {p["start"] + half_bucket: p for p in s.points} for s in view.by_version}
    hourly = {
        name: {float(h["hour_start"]) + 1800.0: h[key] for h in view.compared if key in h}
        for name, key in (("uniform random", "uniform"), ("most popular", "most-popular"))
    }
    times = sorted({t for found in (*points.values(), *hourly.values()) for t in found})

    def line(name: str, by_time: dict[float, Any], mean: str) -> dict[str, Any]:
        rows = [by_time.get(t) for t in times]
        return {
            "name": name,
            "mean": [None if r is None else r[mean] for r in rows],
            "low": [None if r is None else r["low"] for r in rows],
            "high": [None if r is None else r["high"] for r in rows],
        }

    return {
        "times": times,
        "unit": "mean reward per decision (all slots)",
        "bucket_minutes": view.bucket_minutes,
        "series": [line(name, found, "mean") for name, found in points.items()],
        "baselines": [line(name, found, "value") for name, found in hourly.items() if found],
        "overall": _figure(view.overall),
        "stale": view.is_stale,
    }


def models(res: Resources, now: float, window_seconds: float = 86400.0) -> dict[str, Any]:
    """Return the versions with their online metrics from the rollups, the history, the shadow."""
    registry = res.registry
    versions = registry.index.versions()
    shown = versions[:50] + [m for m in versions[50:] if m.state in ("active", "candidate")]
    online = _online(res, now, window_seconds)
    rows = []
    for model in shown:
        row = asdict(model)
        row["file_kept"] = registry.has_file(model)
        row["online"] = online.get(model.version)
        rows.append(row)
    changes = [asdict(c) for c in registry.index.changes(limit=20)]
    active = registry.active()
    found: dict[str, Any] = {
        "active": active.version if active else None,
        "learning_frozen": registry.learning_frozen(),
        "versions_total": len(versions),
        "versions": rows,
        "changes": changes,
        "guardrail_verdicts": [c for c in changes if c["action"] == "guardrail"],
        "decisions_within_window": res.store.decisions_within_window(now),
        "online_window": f"last {window_seconds / 3600:g} h",
        "shadow": None,
    }
    # the shadow's report, as GET /v1/models gives it
    found["shadow"] = shadow_summary(res.store, registry, res.settings, res.config.current().rules)
    return found


def _online(res: Resources, now: float, window_seconds: float) -> dict[str, dict[str, Any]]:
    """Per version: decisions served in the window whose reward window ended, mean reward, 95% interval."""
    sums: dict[str, list[float]] = {}
    first = int((now - window_seconds) // 60)
    for row in RollupReader(res.store).decisions_by_minute(first):
        if row["ended"]:
            total = sums.setdefault(row["model_version"], [0.0, 0.0, 0.0])
            total[0] += row["ended"]
            total[1] += row["reward_sum"]
            total[2] += row["reward_sq"]
    found = {}
    for version, (n, total, squares) in sums.items():
        mean = total / n
        half = None
        if n > 1:
            variance = max(squares - n * mean * mean, 0.0) / (n - 1)
            half = 1.96 * math.sqrt(variance / n)
        found[version] = {
            "decisions": int(n),
            "mean_reward": mean,
            "low": None if half is None else mean - half,
            "high": None if half is None else mean + half,
        }
    return found


def offers(res: Resources, now: float, window_seconds: float) -> dict[str, Any]:
    """Return click-through, dismissals and revenue per offer shown, by category and by offer."""
    hours = max(1, round(window_seconds / 3600))
    grace = res.settings.learner_grace_seconds
    found = loop_health_view.offers(res.store, now=now, window_hours=hours, grace_seconds=grace)
    return {
        "window": f"since {utc(found.since)} (the whole hours the last {hours} h touch)",
        "basis": f"offers shown in decisions made since {utc(found.since)} (the whole hours the last"
        f" {hours} h touch) whose reward window ended"
        f" (true as of {utc(found.as_of)})",
        "stale": found.is_stale,
        "by_category": found.by_category,
        "by_offer": found.by_offer,
        "pacing": found.pacing,
        "no_offer": found.no_offer,
        "scope": http_metrics.scope(),
        "reviews": queries.relations_under_review(res.store.conn),
    }


def event(res: Resources, event_id: str) -> dict[str, Any] | None:
    """Return one decision as the inspector shows it: candidates, exclusions, choices, feedback, reward."""
    record = res.store.find_decision(event_id)
    if record is None:
        return None
    now = res.store.clock()
    rules = res.config.current().rules
    feedback = queries.feedback_rows(res.store.conn, event_id)
    on_time_event = record.to_event(())  # the chosen offers; rewards come from on-time rows below
    on_time = tuple(
        Feedback(f["signal"], f["action_id"], f["value"], f["received_at"]) for f in feedback if f["on_time"]
    )
    chosen = {c.action_id: c for c in on_time_event.choices}
    candidates = []
    for action, probability in zip(record.actions, record.probabilities, strict=True):
        rules_hit = []
        if action.id in record.excluded:
            rules_hit.append("excluded by the request (excluded_actions)")
        for slot, banned in enumerate(record.slot_excluded):
            if action.id in banned:
                rules_hit.append(f"excluded from slot {slot + 1} by its excluded_actions")
        candidates.append(
            {
                "action_id": action.id,
                "features": action.features,
                "probability": probability,
                "excluded_by": rules_hit,
                "chosen_slot": chosen[action.id].slot + 1 if action.id in chosen else None,
            }
        )
    choices = [
        {
            "slot": c.slot + 1,
            "slot_id": record.slot_ids[c.slot] if record.slot_ids else None,
            "action_id": c.action_id,
            "probability": c.probability,
            "reward": rules.reward_for(on_time, c.action_id),
        }
        for c in record.choices
    ]
    learned_in = queries.learned_in(res.store.conn, event_id)
    return {
        "record": record,
        "closed": record.closes_at <= now,
        "candidates": candidates,
        "choices": choices,
        "feedback": feedback,
        "learned_in": learned_in,
        "total_reward": sum(c["reward"] for c in choices),
    }


def evaluations(res: Resources) -> list[Any]:
    """Return every evaluation, newest first."""
    return EvaluationStore(res.store).list()


def settings(res: Resources) -> dict[str, Any]:
    """Return every setting in force with its source (as GET /v1/config)."""
    return res.config.current().describe()


def drift(res: Resources) -> dict[str, Any]:
    """Return the newest drift check of every subject (context namespaces, reward), alarms first."""
    rows = RollupReader(res.store).latest_drift()
    checks = [
        {
            "kind": r["kind"],
            "subject": r["subject"],
            "score": r["score"],
            "p_value": r["p_value"],
            "status": r["status"],
            "recent_n": r["recent_n"],
            "reference_n": r["reference_n"],
            "at": r["at"],
            "detail": drift_detail(r),
        }
        for r in rows
    ]
    order = {"alarm": 0, "warn": 1, "insufficient": 2, "ok": 3}
    checks.sort(key=lambda c: (order.get(c["status"], 4), c["kind"], c["subject"]))
    newest = max((c["at"] for c in checks), default=None)
    # The learner checks about every minute: a check five minutes old means it stopped.
    stale = newest is not None and res.store.clock() - newest > DRIFT_STALE_SECONDS
    return {
        "checks": checks,
        "alarms": [c for c in checks if c["status"] == "alarm"],
        "newest_at": newest,
        "stale": stale,
    }
