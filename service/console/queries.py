"""The console's reads of the shared log, each bounded by a time window and a row cap.

Every outcome figure (feedback share, reward, click-through) counts only decisions
whose reward window has ended (``closes_at <= now``), answered and silent alike, so
an early figure is not inflated by feedback that arrives first. Traffic counts
(decisions and feedback per minute) count what happened in the window. Reads use the
``created_at`` index and stop at ``SAMPLE_LIMIT`` decisions, newest first; the
figures say when they did.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import numpy as np
import orjson

__all__ = [
    "SAMPLE_LIMIT",
    "closed_sample",
    "feedback_rows",
    "offer_counts",
    "pacing_reasons",
    "per_minute",
    "relations_under_review",
    "snapshot_lag",
    "traffic",
]

SAMPLE_LIMIT = 50_000


def traffic(conn: sqlite3.Connection, since: float, now: float) -> dict[str, int]:
    """Count decisions made and feedback received in (since, now], and the late feedback among it."""
    decisions = conn.execute(
        "SELECT count(*) FROM decisions WHERE created_at > ? AND created_at <= ?", (since, now)
    ).fetchone()[0]
    feedback, late = conn.execute(
        "SELECT count(*), coalesce(sum(on_time = 0), 0) FROM feedback"
        " WHERE received_at > ? AND received_at <= ?",
        (since, now),
    ).fetchone()
    return {"decisions": int(decisions), "feedback": int(feedback), "late_feedback": int(late)}


def per_minute(conn: sqlite3.Connection, since: float, now: float) -> dict[str, list[float]]:
    """Return decisions and feedback per minute in (since, now], one point per minute (UTC)."""
    first = int(since // 60) + 1
    minutes = list(range(first, int(now // 60) + 1))
    counts = {name: dict.fromkeys(minutes, 0) for name in ("decisions", "feedback")}
    for name, sql in (
        (
            "decisions",
            "SELECT CAST(created_at / 60 AS INTEGER), count(*) FROM decisions"
            " WHERE created_at > ? AND created_at <= ? GROUP BY 1",
        ),
        (
            "feedback",
            "SELECT CAST(received_at / 60 AS INTEGER), count(*) FROM feedback"
            " WHERE received_at > ? AND received_at <= ? GROUP BY 1",
        ),
    ):
        for minute, count in conn.execute(sql, (since, now)):
            if minute in counts[name]:
                counts[name][minute] = count
    return {
        "times": [m * 60.0 for m in minutes],
        "decisions": [float(counts["decisions"][m]) for m in minutes],
        "feedback": [float(counts["feedback"][m]) for m in minutes],
    }


def closed_sample(conn: sqlite3.Connection, since: float, now: float) -> dict[str, Any]:
    """Summarise the newest closed decisions made in (since, now]: feedback share, delays, exploration.

    Delay is from the decision to its first on-time feedback. Explored: the first slot
    did not get the offer the served distribution rated highest.
    """
    rows = conn.execute(
        "SELECT d.created_at, d.probabilities, d.choices, d.exploration_share,"
        " (SELECT min(f.received_at) FROM feedback f WHERE f.event_id = d.event_id AND f.on_time = 1)"
        " FROM decisions d WHERE d.created_at > ? AND d.created_at <= ? AND d.closes_at <= ?"
        " ORDER BY d.created_at DESC LIMIT ?",
        (since, now, now, SAMPLE_LIMIT),
    ).fetchall()
    delays = np.array([r[4] - r[0] for r in rows if r[4] is not None], dtype=np.float64)
    explored = 0
    for row in rows:
        choices = orjson.loads(row[2])
        if choices and choices[0]["probability"] < max(orjson.loads(row[1]), default=0.0) - 1e-12:
            explored += 1
    shares = [r[3] for r in rows if r[3] is not None]
    return {
        "closed": len(rows),
        "capped": len(rows) == SAMPLE_LIMIT,
        "answered": int(len(delays)),
        "delays": delays,
        "explored": explored,
        "exploration_setting": float(np.mean(shares)) if shares else None,
        "newest_at": rows[0][0] if rows else None,
    }


def snapshot_lag(conn: sqlite3.Connection, now: float) -> dict[str, float | int | None]:
    """Return closed-but-unlearned decisions and when the newest model was published."""
    due = conn.execute(
        "SELECT count(*) FROM decisions WHERE learned_in IS NULL AND learn_at <= ?", (now,)
    ).fetchone()[0]
    last = conn.execute("SELECT max(created_at) FROM models").fetchone()[0]
    return {"unlearned_due": int(due), "last_snapshot_at": last}


def offer_counts(conn: sqlite3.Connection, since: float, now: float) -> dict[str, dict[str, float]]:
    """Per offer (action id), over closed decisions made in (since, now]: times shown and on-time signals."""
    found: dict[str, dict[str, float]] = {}
    for action, shown in conn.execute(
        "SELECT json_extract(c.value, '$.action_id'), count(*) FROM"
        " (SELECT choices FROM decisions WHERE created_at > ? AND created_at <= ? AND closes_at <= ?"
        "  ORDER BY created_at DESC LIMIT ?) d, json_each(d.choices) c GROUP BY 1",
        (since, now, now, SAMPLE_LIMIT),
    ):
        found[action] = {"shown": shown}
    for action, signal, count, value in conn.execute(
        "SELECT f.action_id, f.signal, count(*), coalesce(sum(f.value), 0) FROM feedback f"
        " JOIN (SELECT event_id FROM decisions WHERE created_at > ? AND created_at <= ? AND closes_at <= ?"
        "  ORDER BY created_at DESC LIMIT ?) d USING (event_id)"
        " WHERE f.on_time = 1 GROUP BY 1, 2",
        (since, now, now, SAMPLE_LIMIT),
    ):
        entry = found.setdefault(action, {"shown": 0})
        entry[signal] = count
        if signal == "purchase":
            entry["revenue"] = value
    return found


def categories(conn: sqlite3.Connection, skus: list[str]) -> dict[str, str]:
    """Return the catalog category of each sku the catalog knows."""
    found: dict[str, str] = {}
    for start in range(0, len(skus), 500):
        chunk = skus[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        found.update(conn.execute(f"SELECT sku, category FROM products WHERE sku IN ({marks})", chunk))
    return found


def pacing_reasons(conn: sqlite3.Connection, since: float, now: float) -> list[dict[str, Any]]:
    """Count pacing and no-offer verdicts by verdict and reason in (since, now]."""
    return [
        {"verdict": verdict, "reason": reason, "count": count}
        for verdict, reason, count in conn.execute(
            "SELECT verdict, reason, count(*) FROM pacing_log WHERE at > ? AND at <= ?"
            " GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 100",
            (since, now),
        )
    ]


def relations_under_review(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Return the pairs an operator blocked or pinned, newest first."""
    return [
        dict(zip(("anchor", "complement", "status", "note", "reviewed_at"), row, strict=True))
        for row in conn.execute(
            "SELECT anchor, complement, status, note, reviewed_at FROM relation_reviews"
            " ORDER BY reviewed_at DESC LIMIT 200"
        )
    ]


def feedback_rows(conn: sqlite3.Connection, event_id: str) -> list[dict[str, Any]]:
    """Return every feedback row of an event, on time or late, in arrival order."""
    return [
        dict(row)
        for row in conn.execute(
            "SELECT action_id, signal, value, received_at, on_time, learned_in FROM feedback"
            " WHERE event_id = ? ORDER BY id",
            (event_id,),
        )
    ]
