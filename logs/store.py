"""LogStore: record decisions and feedback, and hand closed events to the learner."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import orjson

from logs import migrations
from logs.db import LogUnavailable, connect, retrying, transaction, wrap
from logs.records import DecisionRecord, EventConflict, FeedbackReceipt, UnknownAction, UnknownEvent
from policies.base import Feedback, LoggedEvent

__all__ = ["Cursor", "LogStore"]


class ShadowScoreLike(Protocol):
    event_id: str
    p_target: tuple[float, ...]
    agrees: bool


Cursor = tuple[float, str]  # (learn_at or created_at, event_id) of the last event handed out
Clock = Callable[[], float]
# Below this much free space readiness fails: a decision with its WAL frames needs
# tens of kilobytes, and a checkpoint more.
MIN_FREE_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class StoreOptions:
    busy_timeout_seconds: float = 30.0
    synchronous: str = "NORMAL"
    # SQLite's default; web workers raise it to a backstop (WORKER_AUTOCHECKPOINT_PAGES)
    # and leave checkpoints to the learner, off the request path.
    autocheckpoint_pages: int = 1000


# About 40 MB of WAL: reached only if no learner has checkpointed for a long while.
WORKER_AUTOCHECKPOINT_PAGES = 10_000


class LogStore:
    """The decision and reward log in one SQLite file; one connection per thread."""

    def __init__(self, path: Path, options: StoreOptions | None = None, *, clock: Clock = time.time):
        self.path = Path(path)
        self.options = options or StoreOptions()
        # Every time the log stamps (feedback, activation) comes from here, so tests can
        # drive time instead of depending on how fast the machine is.
        self.clock = clock
        self._local = threading.local()

    @property
    def conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = retrying(
                lambda: connect(
                    self.path,
                    busy_timeout_seconds=self.options.busy_timeout_seconds,
                    synchronous=self.options.synchronous,
                    autocheckpoint_pages=self.options.autocheckpoint_pages,
                ),
                deadline_seconds=self.options.busy_timeout_seconds,
            )
            self._local.conn = conn
        return conn

    def migrate(self) -> None:
        """Create or upgrade the schema (the entry point calls this before workers start)."""
        retrying(lambda: migrations.apply(wrap(self.conn)), deadline_seconds=self._deadline)

    def close(self) -> None:
        """Close this thread's connection."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @property
    def _deadline(self) -> float:
        return self.options.busy_timeout_seconds

    # -- decisions -------------------------------------------------------------------

    def record_decision(self, record: DecisionRecord) -> tuple[DecisionRecord, bool]:
        """Insert a decision; return (the stored record, whether it is new).

        A retry of the same request returns the decision already stored.

        Raises
        ------
        EventConflict
            The event id is already used by a different request.
        """

        def insert() -> tuple[DecisionRecord, bool]:
            row = record.to_row()
            columns = ", ".join(row)
            marks = ", ".join(f":{name}" for name in row)
            # One statement is its own transaction in autocommit mode: no BEGIN/COMMIT
            # round trips on the rank path. A decision row never changes once written,
            # so reading the existing one afterwards needs no transaction either.
            inserted = self.conn.execute(
                f"INSERT INTO decisions ({columns}) VALUES ({marks}) ON CONFLICT DO NOTHING", row
            ).rowcount
            if inserted:
                return record, True
            existing = self.conn.execute(
                "SELECT * FROM decisions WHERE event_id = ?", (record.event_id,)
            ).fetchone()
            stored = DecisionRecord.from_row(existing)
            if stored.request_sha256 != record.request_sha256:
                raise EventConflict(f"event id {record.event_id!r} was already used for another request")
            return stored, False

        return retrying(insert, deadline_seconds=self._deadline)

    def find_decision(self, event_id: str) -> DecisionRecord | None:
        """Return the stored decision with this event id, if any."""
        row = retrying(
            lambda: self.conn.execute("SELECT * FROM decisions WHERE event_id = ?", (event_id,)).fetchone(),
            deadline_seconds=self._deadline,
        )
        return DecisionRecord.from_row(row) if row else None

    # -- feedback --------------------------------------------------------------------

    def record_feedback(
        self,
        event_id: str,
        signal: str,
        value: float | None,
        *,
        action_id: str | None = None,
        dedupe_key: str | None = None,
    ) -> FeedbackReceipt:
        """Record one thing the shopper did; the same signal twice counts once.

        Feedback before the event's reward window ends is on time: the learner learns
        it (with the event's first learning if it came before that, else as a
        correction). Feedback after the window is kept with ``on_time = 0``: recorded,
        never learned. Feedback never moves the window, so an event with feedback and a
        silent one close alike. `dedupe_key` overrides which posts count as the same
        one (default: the signal, or a raw reward's value).

        Raises
        ------
        UnknownEvent
            No such event.
        UnknownAction
            `action_id` was not one of the offers chosen in that event.
        """
        if dedupe_key is None:
            dedupe_key = signal if value is None or signal != "reward" else f"reward:{value!r}"

        def insert() -> FeedbackReceipt:
            with transaction(self.conn) as conn:
                row = conn.execute(
                    "SELECT closes_at, choices, deferred, activated_at FROM decisions WHERE event_id = ?",
                    (event_id,),
                ).fetchone()
                if row is None:
                    raise UnknownEvent(event_id)
                chosen = [c["action_id"] for c in orjson.loads(row["choices"])]
                target = action_id if action_id is not None else (chosen[0] if chosen else "")
                if target not in chosen:
                    raise UnknownAction(f"action {target!r} was not offered in event {event_id!r}")
                # Taken after the write lock is held, so the learner's grace period
                # (see Learner) always covers the gap until this commits.
                now = self.clock()
                # Before a deferred decision is activated nobody saw it: its rewards are
                # kept but never learned (as Personalizer ignored them).
                waiting = bool(row["deferred"]) and row["activated_at"] is None
                on_time = now <= row["closes_at"] and not waiting
                inserted = conn.execute(
                    "INSERT INTO feedback"
                    " (event_id, action_id, signal, value, dedupe_key, received_at, on_time)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    (event_id, target, signal, value, dedupe_key, now, int(on_time)),
                ).rowcount
                if not inserted:
                    on_time = bool(
                        conn.execute(
                            "SELECT on_time FROM feedback"
                            " WHERE event_id = ? AND action_id = ? AND dedupe_key = ?",
                            (event_id, target, dedupe_key),
                        ).fetchone()[0]
                    )
            return FeedbackReceipt(event_id, target, signal, duplicate=not inserted, on_time=on_time)

        return retrying(insert, deadline_seconds=self._deadline)

    def activate(self, event_id: str, *, window_seconds: float, first_learn_seconds: float) -> bool:
        """Mark a deferred decision as shown: its reward window and learning schedule start now.

        Return whether this call activated it (False for a decision that was never
        deferred or is active already).

        Raises
        ------
        UnknownEvent
            No such event.
        """

        def write() -> bool:
            with transaction(self.conn) as conn:
                row = conn.execute(
                    "SELECT deferred, activated_at FROM decisions WHERE event_id = ?", (event_id,)
                ).fetchone()
                if row is None:
                    raise UnknownEvent(event_id)
                if not row["deferred"] or row["activated_at"] is not None:
                    return False
                now = self.clock()
                conn.execute(
                    "UPDATE decisions SET activated_at = ?, closes_at = ?, learn_at = ? WHERE event_id = ?",
                    (now, now + window_seconds, now + min(first_learn_seconds, window_seconds), event_id),
                )
                return True

        return retrying(write, deadline_seconds=self._deadline)

    # -- learning --------------------------------------------------------------------

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

        return retrying(query, deadline_seconds=self._deadline)

    @staticmethod
    def _decisions(conn: sqlite3.Connection, event_ids: list[str]) -> list[sqlite3.Row]:
        rows: list[sqlite3.Row] = []
        for start in range(0, len(event_ids), 500):
            chunk = event_ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            rows += conn.execute(f"SELECT * FROM decisions WHERE event_id IN ({marks})", chunk).fetchall()
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
        among the newest (feedback closes an event early; silence only at its window's end).
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
                    "INSERT OR IGNORE INTO shadow_scores (event_id, shadow, p_target, agrees, scored_at)"
                    " VALUES (?, ?, ?, ?, ?)",
                    [
                        (s.event_id, shadow, orjson.dumps(list(s.p_target)).decode(), int(s.agrees), now)
                        for s in scores
                    ],
                )

        retrying(write, deadline_seconds=self._deadline)

    def shadow_scored(
        self, shadow: str, *, limit: int = 100_000
    ) -> list[tuple[LoggedEvent, tuple[float, ...], bool]]:
        """Return the newest events a shadow scored, with its per-slot probabilities and agreement."""

        def query() -> list[tuple[LoggedEvent, tuple[float, ...], bool]]:
            conn = self.conn
            conn.execute("BEGIN")
            try:
                rows = conn.execute(
                    "SELECT d.*, s.p_target AS shadow_p_target, s.agrees AS shadow_agrees"
                    " FROM shadow_scores s JOIN decisions d USING (event_id)"
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

        return retrying(query, deadline_seconds=self._deadline)

    def purge(self, *, older_than: float) -> dict[str, int]:
        """Delete decisions made before `older_than` (their feedback and shadow scores go with
        them) and pacing history of the same age; return how many rows each table lost."""

        def write() -> dict[str, int]:
            with transaction(self.conn) as conn:
                removed = {
                    "feedback": conn.execute(
                        "DELETE FROM feedback WHERE event_id IN"
                        " (SELECT event_id FROM decisions WHERE created_at < ?)",
                        (older_than,),
                    ).rowcount,
                    "shadow_scores": conn.execute(
                        "DELETE FROM shadow_scores WHERE event_id IN"
                        " (SELECT event_id FROM decisions WHERE created_at < ?)",
                        (older_than,),
                    ).rowcount,
                    "decisions": conn.execute(
                        "DELETE FROM decisions WHERE created_at < ?", (older_than,)
                    ).rowcount,
                    "shopper_events": conn.execute(
                        "DELETE FROM shopper_events WHERE at < ?", (older_than,)
                    ).rowcount,
                    "pacing_log": conn.execute("DELETE FROM pacing_log WHERE at < ?", (older_than,)).rowcount,
                }
            return removed

        return retrying(write, deadline_seconds=self._deadline)

    def decisions_within_window(self, now: float | None = None) -> int:
        """Return how many decisions' reward windows have not ended (deferred ones included)."""
        at = self.clock() if now is None else now
        row = retrying(
            lambda: self.conn.execute("SELECT count(*) FROM decisions WHERE closes_at > ?", (at,)).fetchone(),
            deadline_seconds=self._deadline,
        )
        return int(row[0])

    def decision_time_range(self) -> tuple[float, float] | None:
        """Return when the oldest and the newest logged decisions were made, if any."""
        row = retrying(
            lambda: self.conn.execute("SELECT min(created_at), max(created_at) FROM decisions").fetchone(),
            deadline_seconds=self._deadline,
        )
        return None if row[0] is None else (row[0], row[1])

    def has_schema(self) -> bool:
        """Whether this file holds an xsell log (so a stray SQLite file is refused by name)."""
        found = retrying(
            lambda: self.conn.execute(
                "SELECT count(*) FROM sqlite_master"
                " WHERE type = 'table' AND name IN ('decisions', 'feedback')"
            ).fetchone()[0],
            deadline_seconds=self._deadline,
        )
        return found == 2

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
            sql = f"SELECT * FROM decisions WHERE {where}"
            values = list(params)
            if after is not None:
                sql += f" AND ({first}, {second}) > (?, ?)"
                values += list(after)
            sql += f" ORDER BY {first} {direction}, {second} {direction} LIMIT ?"
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

        return retrying(query, deadline_seconds=self._deadline)

    @staticmethod
    def _on_time_feedback(
        conn: sqlite3.Connection, event_ids: list[str], *, received_before: float = float("inf")
    ) -> dict[str, tuple[Feedback, ...]]:
        found: dict[str, list[Feedback]] = {}
        for start in range(0, len(event_ids), 500):
            chunk = event_ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
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
        self, conn: sqlite3.Connection, learned: Mapping[str, Sequence[int] | None], version: str
    ) -> None:
        """Mark events, and the feedback they were learned with, as included in `version`.

        Runs inside the caller's transaction (the one publishing `version`). `learned`
        maps each event id to the feedback rows its learning read (None: all of its
        on-time feedback), so feedback that committed after the read stays to be
        learned. An event keeps the version that first learned it.
        """
        conn.executemany(
            "UPDATE decisions SET learned_in = COALESCE(learned_in, ?) WHERE event_id = ?",
            ((version, e) for e in learned),
        )
        conn.executemany(
            "UPDATE feedback SET learned_in = ? WHERE event_id = ? AND learned_in IS NULL AND on_time = 1",
            ((version, e) for e, ids in learned.items() if ids is None),
        )
        conn.executemany(
            "UPDATE feedback SET learned_in = ? WHERE id = ? AND learned_in IS NULL",
            ((version, i) for ids in learned.values() if ids is not None for i in ids),
        )

    def checkpoint(self) -> None:
        """Copy what the WAL holds back into the database without waiting for readers.

        The learner calls this every second or so, so that web workers never pay for
        a checkpoint (and its fsync) inside a request.
        """
        retrying(
            lambda: self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone(),
            deadline_seconds=self._deadline,
        )

    # -- health ----------------------------------------------------------------------

    def check_writable(self) -> None:
        """Raise LogUnavailable unless the log can take a write lock right now."""

        def probe() -> None:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute("ROLLBACK")

        # retrying() already turns every SQLite failure into LogUnavailable.
        retrying(probe, deadline_seconds=min(self._deadline, 2.0))
        # Taking the lock needs no space, so a full disk would pass the probe while
        # every insert fails: look at the free space too.
        disk = os.statvfs(self.path.parent)
        free = disk.f_bavail * disk.f_frsize
        if free < MIN_FREE_BYTES:
            raise LogUnavailable(f"the disk holding the log is full ({free} bytes free)")
