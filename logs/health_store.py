"""What the learner's health chores write: drift checks and per-hour policy estimates,
and the bounded event samples those estimates are computed on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import orjson

from logs.db import transaction
from logs.dialect import SQLITE
from logs.payloads import DECISION_SELECT
from logs.records import DecisionRecord
from logs.store import LogStore
from policies.base import LoggedEvent

__all__ = ["HealthStore"]

_UPSERT_ESTIMATE = SQLITE.upsert(  # ``?`` placeholders: the connection translates them
    "learning_estimates",
    ("hour", "policy", "estimator", "value", "low", "high", "n", "decisions", "computed_at"),
    ("hour", "policy"),
)


class DriftRow(Protocol):
    """One drift check's result (policies.learning.drift.DriftResult)."""

    @property
    def kind(self) -> str: ...
    @property
    def subject(self) -> str: ...
    @property
    def score(self) -> float | None: ...
    @property
    def p_value(self) -> float | None: ...
    @property
    def status(self) -> str: ...
    @property
    def recent_n(self) -> int: ...
    @property
    def reference_n(self) -> int: ...
    @property
    def detail(self) -> Mapping[str, Any]: ...


class HealthStore:
    """Write drift checks and learning estimates; sample closed events per hour."""

    def __init__(self, store: LogStore, *, keep_drift_checks: int = 20_000):
        self.store = store
        self.keep_drift_checks = keep_drift_checks

    def record_drift(self, at: float, results: Sequence[DriftRow], windows: Mapping[str, object]) -> None:
        """Save one round of drift checks; keep only the newest `keep_drift_checks` rows."""

        def write() -> None:
            with transaction(self.store.conn) as conn:
                conn.executemany(
                    "INSERT INTO drift_checks"
                    " (at, kind, subject, score, p_value, status, recent_n, reference_n, detail)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        (
                            at,
                            r.kind,
                            r.subject,
                            r.score,
                            r.p_value,
                            r.status,
                            r.recent_n,
                            r.reference_n,
                            orjson.dumps({**r.detail, "windows_minutes": windows.get(r.kind)}).decode(),
                        )
                        for r in results
                    ],
                )
                conn.execute(
                    "DELETE FROM drift_checks WHERE id <= (SELECT max(id) FROM drift_checks) - ?",
                    (self.keep_drift_checks,),
                )

        self.store.retry(write)

    def hours_to_estimate(self, *, first_hour: int, ended_before: float) -> list[int]:
        """Hours not estimated yet whose windows all ended by `ended_before`, newest first."""
        last_hour = int(ended_before // 3600)  # an hour only once every decision in it has ended
        rows = self.store.retry(
            lambda: self.store.conn.execute(
                "SELECT DISTINCT minute / 60 AS hour FROM rollup_decisions WHERE minute >= ? AND minute < ?"
                " AND minute / 60 NOT IN (SELECT hour FROM learning_estimates) ORDER BY hour DESC",
                (first_hour * 60, last_hour * 60),
            ).fetchall()
        )
        return [int(r[0]) for r in rows]

    def sample_events(self, hour: int, *, closed_before: float, size: int) -> tuple[list[LoggedEvent], int]:
        """Return up to `size` closed events of an hour, evenly spread over it, and how many it holds."""

        def query() -> tuple[list[LoggedEvent], int]:
            conn = self.store.conn
            conn.execute("BEGIN")  # one snapshot: the ids, their decisions and their feedback
            try:
                ids = [
                    r[0]
                    for r in conn.execute(
                        "SELECT event_id FROM decisions WHERE created_at >= ? AND created_at < ?"
                        " AND closes_at <= ? ORDER BY created_at, event_id",
                        (hour * 3600.0, (hour + 1) * 3600.0, closed_before),
                    )
                ]
                step = max(len(ids) / size, 1.0)
                picked = sorted({ids[int(k * step)] for k in range(min(size, len(ids)))})
                rows: list[Any] = []
                for start in range(0, len(picked), 500):
                    chunk = picked[start : start + 500]
                    marks = ", ".join("?" * len(chunk))
                    rows += conn.execute(f"{DECISION_SELECT} WHERE d.event_id IN ({marks})", chunk).fetchall()
                feedback = LogStore._on_time_feedback(conn, [r["event_id"] for r in rows])
            finally:
                conn.execute("COMMIT")
            events = [DecisionRecord.from_row(r).to_event(feedback.get(r["event_id"], ())) for r in rows]
            events.sort(key=lambda e: (e.created_at, e.event_id))
            return events, len(ids)

        return self.store.retry(query)

    def record_estimates(
        self,
        hour: int,
        rows: Sequence[tuple[str, str, float, float, float, int]],
        *,
        decisions: int,
        at: float,
    ) -> None:
        """Save an hour's estimates: (policy, estimator, value, low, high, n) each."""

        def write() -> None:
            with transaction(self.store.conn) as conn:
                conn.executemany(_UPSERT_ESTIMATE, [(hour, *row, decisions, at) for row in rows])

        self.store.retry(write)
