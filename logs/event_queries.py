"""EventQueries: hand logged events to the learner, the evaluator and the shadow."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

import orjson

from logs.connection import LogConnection, StoreBase
from logs.db import in_chunks, transaction
from logs.payloads import DECISION_COLUMNS, DECISION_SELECT, PAYLOAD_JOINS
from logs.records import DecisionRecord
from policies.base import Feedback, LoggedEvent

__all__ = ["Cursor", "EventQueries"]

Cursor = tuple[float, str]  # (learn_at or created_at, event_id) of the last event handed out


class ShadowScoreLike(Protocol):
    event_id: str
    p_target: tuple[float, ...]
    agrees: bool


class EventQueries(StoreBase):
    """Reads of decisions with their feedback, each in one snapshot, and the learned marks."""

    def closed_events(
        self, *, closed_before: float, after: Cursor | None = None, limit: int = 500
    ) -> list[tuple[LoggedEvent, Cursor]]:
        """Return events due for their first learning and not yet in a published model.

        An event is due at its ``learn_at`` (a short horizon after it was made or
        activated), with the on-time feedback received by `closed_before`, whether it
        has any or not: answered and silent events are learned alike in time.
        Oldest first, each with its cursor, so the caller can ask for the next page.
        """
        return self._page(
            "learned_in IS NULL AND learn_at <= ?",
            [closed_before],
            ("learn_at", "event_id"),
            after,
            limit,
            feedback_before=closed_before,
        )

    def correction_events(
        self, *, closed_before: float, skip: Iterable[str] = (), limit: int = 500
    ) -> list[tuple[LoggedEvent, tuple[Feedback, ...]]]:
        """Return learned events with on-time feedback no published model has learned.

        Each comes with all its on-time feedback received by `closed_before` and, apart,
        the feedback already learned, so the caller can tell whether the reward changed.
        Events in `skip` (learned in memory, not yet published) wait for the next call.
        """
        skipped = set(skip)

        def query() -> list[tuple[LoggedEvent, tuple[Feedback, ...]]]:
            conn = self.conn
            conn.execute("BEGIN")
            try:
                ids = [
                    r[0]
                    for r in conn.execute(
                        "SELECT DISTINCT f.event_id FROM feedback f JOIN decisions d USING (event_id)"
                        " WHERE f.learned_in IS NULL AND f.on_time = 1 AND f.received_at <= ?"
                        " AND d.learned_in IS NOT NULL",
                        (closed_before,),
                    )
                    if r[0] not in skipped
                ][:limit]
                rows = self._decisions(conn, ids)
                feedback = self._on_time_feedback(conn, ids, received_before=closed_before)
            finally:
                conn.execute("COMMIT")
            found = []
            for row in rows:
                items = feedback.get(row["event_id"], ())
                learned = tuple(f for f in items if f.learned)
                found.append((DecisionRecord.from_row(row).to_event(items), learned))
            return found

        return self.retry(query)

    @staticmethod
    def _decisions(conn: LogConnection, event_ids: list[str]) -> list[Any]:
        rows: list[Any] = []
        for chunk, marks in in_chunks(event_ids):
            rows += conn.execute(f"{DECISION_SELECT} WHERE d.event_id IN ({marks})", chunk).fetchall()
        return rows

    def replay_events(
        self,
        *,
        closed_before: float,
        after: Cursor | None = None,
        limit: int = 1000,
        created_from: float = float("-inf"),
        created_to: float = float("inf"),
    ) -> list[tuple[LoggedEvent, Cursor]]:
        """Return every event closed by `closed_before`, learned or not, in decision order,
        optionally only those decided in [created_from, created_to).

        The cursor is (created_at, event_id); the evaluator pages through the whole log.
        """
        return self._page(
            "closes_at <= ? AND created_at >= ? AND created_at < ?",
            [closed_before, created_from, created_to],
            ("created_at", "event_id"),
            after,
            limit,
        )

    def recent_closed_events(
        self, *, limit: int, created_after: float, created_before: float | None = None
    ) -> list[LoggedEvent]:
        """Return up to `limit` closed events decided in (created_after, created_before], newest first.

        Callers comparing reward rates pass `created_before` = now - reward window: every
        event made before then has closed, so silent events are not under-represented
        among the newest.
        """
        before = self.clock() if created_before is None else created_before
        where = "closes_at <= ? AND created_at > ? AND created_at <= ?"
        page = self._page(
            where, [self.clock(), created_after, before], ("created_at", "event_id"), None, limit, desc=True
        )
        return [event for event, _ in page]

    # -- shadow ----------------------------------------------------------------------

    def record_shadow_scores(self, shadow: str, scores: Sequence[ShadowScoreLike]) -> None:
        """Save a shadow policy's scores; an event scored twice keeps its first score."""

        def write() -> None:
            now = time.time()
            with transaction(self.conn) as conn:
                conn.executemany(
                    "INSERT INTO shadow_scores (event_id, shadow, p_target, agrees, scored_at)"
                    " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    [
                        (s.event_id, shadow, orjson.dumps(list(s.p_target)).decode(), int(s.agrees), now)
                        for s in scores
                    ],
                )

        self.retry(write)

    def shadow_scored(
        self, shadow: str, *, limit: int = 100_000
    ) -> list[tuple[LoggedEvent, tuple[float, ...], bool]]:
        """Return the newest events a shadow scored, with its per-slot probabilities and agreement."""

        def query() -> list[tuple[LoggedEvent, tuple[float, ...], bool]]:
            conn = self.conn
            conn.execute("BEGIN")
            try:
                rows = conn.execute(
                    f"SELECT {DECISION_COLUMNS}, s.p_target AS shadow_p_target, s.agrees AS shadow_agrees"
                    f" FROM shadow_scores s JOIN decisions d USING (event_id){PAYLOAD_JOINS}"
                    " WHERE s.shadow = ? ORDER BY s.scored_at DESC LIMIT ?",
                    (shadow, limit),
                ).fetchall()
                feedback = self._on_time_feedback(conn, [r["event_id"] for r in rows])
            finally:
                conn.execute("COMMIT")
            return [
                (
                    DecisionRecord.from_row(r).to_event(feedback.get(r["event_id"], ())),
                    tuple(orjson.loads(r["shadow_p_target"])),
                    bool(r["shadow_agrees"]),
                )
                for r in rows
            ]

        return self.retry(query)

    # -- paging ----------------------------------------------------------------------

    def _page(
        self,
        where: str,
        params: list[object],
        order: tuple[str, str],
        after: Cursor | None,
        limit: int,
        *,
        desc: bool = False,
        feedback_before: float = float("inf"),
    ) -> list[tuple[LoggedEvent, Cursor]]:
        first, second = order
        direction = "DESC" if desc else "ASC"

        def query() -> list[tuple[LoggedEvent, Cursor]]:
            sql = f"{DECISION_SELECT} WHERE {where}"
            values = list(params)
            if after is not None:
                sql += f" AND (d.{first}, d.{second}) > (?, ?)"
                values += list(after)
            sql += f" ORDER BY d.{first} {direction}, d.{second} {direction} LIMIT ?"
            values.append(limit)
            conn = self.conn
            conn.execute("BEGIN")  # one snapshot for decisions and their feedback
            try:
                rows = conn.execute(sql, values).fetchall()
                feedback = self._on_time_feedback(
                    conn, [r["event_id"] for r in rows], received_before=feedback_before
                )
            finally:
                conn.execute("COMMIT")
            return [
                (
                    DecisionRecord.from_row(row).to_event(feedback.get(row["event_id"], ())),
                    (row[first], row[second]),
                )
                for row in rows
            ]

        return self.retry(query)

    @staticmethod
    def _on_time_feedback(
        conn: LogConnection, event_ids: list[str], *, received_before: float = float("inf")
    ) -> dict[str, tuple[Feedback, ...]]:
        found: dict[str, list[Feedback]] = {}
        for chunk, marks in in_chunks(event_ids):
            for row in conn.execute(
                f"SELECT * FROM feedback WHERE on_time = 1 AND event_id IN ({marks}) AND received_at <= ?"
                " ORDER BY id",
                [*chunk, received_before],
            ):
                found.setdefault(row["event_id"], []).append(
                    Feedback(
                        row["signal"],
                        row["action_id"],
                        row["value"],
                        row["received_at"],
                        learned=row["learned_in"] is not None,
                        log_id=row["id"],
                    )
                )
        return {event_id: tuple(items) for event_id, items in found.items()}

    def mark_learned(
        self, conn: LogConnection, learned: Mapping[str, Sequence[int] | None], version: str
    ) -> None:
        """Mark events, and the feedback they were learned with, as included in `version`.

        Runs inside the caller's transaction (the one publishing `version`). `learned`
        maps each event id to the feedback rows its learning read (None: all of its
        on-time feedback), so feedback that committed after the read stays to be
        learned. An event keeps the version that first learned it.
        """
        # A few statements over IN lists rather than one per event: the learner marks
        # every decision it learns, and each statement is a round trip on PostgreSQL.
        every = list(learned)
        whole = [e for e, ids in learned.items() if ids is None]
        rows = [i for ids in learned.values() if ids is not None for i in ids]
        for chunk, marks in in_chunks(every):
            conn.execute(
                f"UPDATE decisions SET learned_in = ? WHERE event_id IN ({marks}) AND learned_in IS NULL",
                [version, *chunk],
            )
        for chunk, marks in in_chunks(whole):
            conn.execute(
                f"UPDATE feedback SET learned_in = ? WHERE event_id IN ({marks})"
                " AND learned_in IS NULL AND on_time = 1",
                [version, *chunk],
            )
        for row_ids, marks in in_chunks(rows):
            conn.execute(
                f"UPDATE feedback SET learned_in = ? WHERE id IN ({marks}) AND learned_in IS NULL",
                [version, *row_ids],
            )
