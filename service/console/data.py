"""Everything the console pages show, as plain dicts: the one place the pages get figures from.

The pages never query the log themselves, so when cheaper sources arrive (rollups
kept by the learner) only this module changes. Every figure carries its unit, its
window and whether it is stale; outcome figures count only decisions whose reward
window has ended (``closes_at <= now``).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

import numpy as np

from logs.evaluation_store import EvaluationStore
from service.console import learning, queries
from service.overview import models_overview
from service.resources import Resources

__all__ = ["STALE_SECONDS", "event", "evaluations", "loop_health", "models", "offers", "settings"]

# A figure whose newest input is older than this says it is stale.
STALE_SECONDS = 300.0
DELAY_BUCKETS = ((0, 1), (1, 10), (10, 60), (60, 300), (300, 600), (600, float("inf")))


def _figure(
    value: Any, unit: str, window: str, *, stale: str | None = None, note: str = ""
) -> dict[str, Any]:
    return {"value": value, "unit": unit, "window": window, "stale": stale, "note": note}


def _window_name(seconds: float) -> str:
    return f"last {seconds / 60:g} min" if seconds < 7200 else f"last {seconds / 3600:g} h"


def loop_health(res: Resources, now: float, window_seconds: float) -> dict[str, Any]:
    """Return the loop's health over the last `window_seconds`: traffic, feedback, delays, lag."""
    conn = res.store.conn
    since = now - window_seconds
    window = _window_name(window_seconds)
    counted = queries.traffic(conn, since, now)
    sample = queries.closed_sample(conn, since, now)
    lag = queries.snapshot_lag(conn, now)
    minutes = window_seconds / 60
    closed_window = f"decisions made in the {window} whose reward window ended"
    no_traffic = None if counted["decisions"] else f"no decision in the {window}"
    closed = sample["closed"]
    delays = sample["delays"]
    figures = {
        "decisions_per_minute": _figure(
            counted["decisions"] / minutes, "decisions/min", window, stale=no_traffic
        ),
        "feedback_per_minute": _figure(
            counted["feedback"] / minutes, "feedback/min", window, stale=no_traffic
        ),
        "feedback_share": _figure(
            sample["answered"] / closed if closed else None,
            "share of closed decisions with on-time feedback",
            closed_window,
            stale=None if closed else "no decision in the window has closed yet",
            note=f"{sample['answered']} of {closed}",
        ),
        "late_feedback": _figure(counted["late_feedback"], "feedback rows after their window", window),
        "unmatched_feedback": _figure(
            None, "feedback for unknown events", window, note="refused with 404, not logged"
        ),
        "exploration": _figure(
            sample["explored"] / closed if closed else None,
            "share of closed decisions whose first offer was not the top-rated one",
            closed_window,
            stale=None if closed else "no decision in the window has closed yet",
            note=f"{sample['explored']} of {closed}",
        ),
        "unlearned_due": _figure(lag["unlearned_due"], "decisions due but not in a published model", "now"),
        "snapshot_age": _figure(
            None if lag["last_snapshot_at"] is None else now - lag["last_snapshot_at"],
            "seconds since the newest model was published",
            "now",
            stale=_learner_stale(lag, now),
        ),
    }
    return {
        "window": window,
        "window_seconds": window_seconds,
        "figures": figures,
        "delays": _delays(delays, closed_window),
        "per_minute": queries.per_minute(conn, since, now),
        "capped": sample["capped"],
        "within_window": res.store.decisions_within_window(now),
    }


def _learner_stale(lag: dict[str, Any], now: float) -> str | None:
    last = lag["last_snapshot_at"]
    if lag["unlearned_due"] and (last is None or now - last > STALE_SECONDS):
        return "decisions are waiting and no model was published for over 5 min: is the learner running?"
    return None


def _delays(delays: np.ndarray, window: str) -> dict[str, Any]:
    quantiles = {f"p{q}": float(np.percentile(delays, q)) for q in (50, 90, 99)} if len(delays) else {}
    buckets = [
        {
            "low": low,
            "high": high,
            "count": int(np.count_nonzero((delays >= low) & (delays < high))),
        }
        for low, high in DELAY_BUCKETS
    ]
    return {
        "unit": "seconds from decision to first on-time feedback",
        "window": window,
        "n": int(len(delays)),
        "quantiles": quantiles,
        "buckets": buckets,
    }


def learning_chart(res: Resources, now: float, window_seconds: float) -> dict[str, Any]:
    """Return mean reward per bucket and model version beside uniform and most-popular estimates."""
    rules = res.config.current().rules
    return learning.chart(res.store, rules, now, window_seconds)


def models(res: Resources) -> dict[str, Any]:
    """Return the models overview (as GET /v1/models) and the guardrail's verdicts from the history."""
    overview = models_overview(res.store, res.registry, res.settings, limit=50)
    overview["guardrail_verdicts"] = [c for c in overview["changes"] if c.get("action") == "guardrail"]
    in_force = res.config.current().settings
    overview["guardrail_enabled"] = bool(getattr(in_force, "guardrail_enabled", True))
    return overview


def offers(res: Resources, now: float, window_seconds: float) -> dict[str, Any]:
    """Return click-through, dismissals and revenue per decision by offer and by category."""
    conn = res.store.conn
    since = now - window_seconds
    counts = queries.offer_counts(conn, since, now)
    kinds = queries.categories(conn, sorted(counts))
    by_offer = [_rates(action, kinds.get(action, "(not in catalog)"), c) for action, c in counts.items()]
    by_offer.sort(key=lambda r: -r["shown"])
    totals: dict[str, dict[str, float]] = {}
    for action, c in counts.items():
        entry = totals.setdefault(kinds.get(action, "(not in catalog)"), {})
        for name, value in c.items():
            entry[name] = entry.get(name, 0) + value
    by_category = sorted((_rates(None, k, c) for k, c in totals.items()), key=lambda r: -r["shown"])
    window = _window_name(window_seconds)
    return {
        "window": window,
        "basis": f"offers shown in decisions made in the {window} whose reward window ended",
        "by_offer": by_offer[:200],
        "by_category": by_category,
        "pacing": queries.pacing_reasons(conn, since, now),
        "reviews": queries.relations_under_review(conn),
    }


def _rates(action: str | None, category: str, c: dict[str, float]) -> dict[str, Any]:
    shown = c.get("shown", 0)

    def per(value: float) -> float | None:
        return value / shown if shown else None

    return {
        "action_id": action,
        "category": category,
        "shown": int(shown),
        "click_through": per(c.get("click", 0)),
        "dismiss_rate": per(c.get("dismiss", 0)),
        "purchase_rate": per(c.get("purchase", 0)),
        "revenue_per_offer": per(c.get("revenue", 0.0)),
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
    from policies.base import Feedback  # the learner's type, so the reward is computed its way

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
    learned_in = res.store.conn.execute(
        "SELECT learned_in FROM decisions WHERE event_id = ?", (event_id,)
    ).fetchone()[0]
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


def drift(res: Resources) -> dict[str, Any] | None:
    """Return the drift alarms, or None while this service has no drift detector."""
    try:
        from service import loop_health as peer  # the metrics side, when it has landed
    except ImportError:
        return None
    found = getattr(peer, "drift", None)
    if found is None:
        return None
    result = found(res)
    return result if isinstance(result, dict) else asdict(result)
