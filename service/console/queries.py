"""The console's own reads of the log: one event's feedback, and the relations under review.

Every aggregate figure comes from the learner's rollups (service/loop_health.py);
these reads are by primary key or over a small table.
"""

from __future__ import annotations

import sqlite3
from typing import Any

__all__ = ["feedback_rows", "learned_in", "relations_under_review"]


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


def learned_in(conn: sqlite3.Connection, event_id: str) -> str | None:
    """Return the model version that first learned the event, if any has."""
    row = conn.execute("SELECT learned_in FROM decisions WHERE event_id = ?", (event_id,)).fetchone()
    return None if row is None else row[0]
