"""LogStore: record decisions and feedback; the learner's queries and upkeep come from its bases.

The class is put together from one module per concern: logs/connection.py (the
connection and the retry), logs/event_queries.py (events for the learner, the
evaluator and the shadow), logs/maintenance.py (retention, checkpoints, health) and
logs/footprint.py (the disk budget). All SQL stays in logs/, behind these methods,
written once for SQLite and PostgreSQL (the contract: logs/connection.py).
"""

from __future__ import annotations

import time
from pathlib import Path

import orjson

from logs import payloads
from logs.connection import WORKER_AUTOCHECKPOINT_PAGES, Clock, StoreOptions
from logs.db import INTEGRITY_ERRORS, LogUnavailable, exclusive, transaction
from logs.dialect import DatabaseUrl
from logs.event_queries import Cursor, EventQueries
from logs.footprint import Footprint
from logs.maintenance import MIN_FREE_BYTES, Maintenance
from logs.records import DecisionRecord, EventConflict, FeedbackReceipt, UnknownAction, UnknownEvent

__all__ = [
    "MIN_FREE_BYTES",
    "WORKER_AUTOCHECKPOINT_PAGES",
    "Clock",
    "Cursor",
    "LogStore",
    "StoreOptions",
]


class LogStore(EventQueries, Maintenance, Footprint):
    """The decision and reward log, in one SQLite file or one PostgreSQL database."""

    def __init__(
        self,
        location: Path | str | DatabaseUrl,
        options: StoreOptions | None = None,
        *,
        clock: Clock = time.time,
    ):
        super().__init__(location, options, clock=clock)
        self._known = payloads.KnownDigests()

    # -- decisions -------------------------------------------------------------------

    def record_decision(self, record: DecisionRecord) -> tuple[DecisionRecord, bool]:
        """Insert a decision; return (the stored record, whether it is new).

        A retry of the same request returns the decision already stored. The insert
        is ``ON CONFLICT DO NOTHING`` (never check-then-insert), so of processes
        inserting one event id at once exactly one row wins, on either backend, and
        every other one reads it back.

        Raises
        ------
        EventConflict
            The event id is already used by a different request.
        """
        row, shared = record.to_row()

        def insert() -> tuple[DecisionRecord, bool]:
            for attempt in range(3):
                try:
                    inserted = self._insert(row, shared)
                except INTEGRITY_ERRORS as error:
                    # SQLite: a payload this process knew was pruned meanwhile (the
                    # foreign key caught it): forget what it knew, write them again.
                    # Any other broken constraint is a bug, raised as it is.
                    if attempt == 2 or "FOREIGN KEY" not in str(error).upper():
                        raise
                    self._known.clear()
                    continue
                if inserted:
                    return record, True
                existing = self.conn.execute(
                    f"{payloads.DECISION_SELECT} WHERE d.event_id = ?", (record.event_id,)
                ).fetchone()
                if existing is None:
                    # PostgreSQL: nothing inserted and nothing stored, so a payload this
                    # process knew was pruned meanwhile (logs/payloads.py): likewise.
                    self._known.clear()
                    continue
                stored = DecisionRecord.from_row(existing)
                if stored.request_sha256 != record.request_sha256:
                    raise EventConflict(f"event id {record.event_id!r} was already used for another request")
                return stored, False
            raise LogUnavailable(f"decision {record.event_id!r}: its payloads were pruned as it was written")

        return self.retry(insert)

    def _insert(self, row: dict[str, object], shared: dict[bytes, bytes]) -> int:
        """Insert the row, first the payloads this process has not seen stored."""
        guarded = self.dialect.name != "sqlite"  # no foreign keys there: see logs/payloads.py
        sql = _insert_sql(row, guarded)
        values = tuple(row.values())
        if guarded:
            values += (row["actions_ref"], row["context_ref"])
        conn = self.conn
        # In digest order: two writers sharing payloads lock them in the same order.
        missing = sorted((key, data) for key, data in shared.items() if key not in self._known)
        if not missing:
            # One statement is its own transaction in autocommit mode: no BEGIN/COMMIT
            # round trips on the rank path. A decision row never changes once written,
            # so reading the existing one afterwards needs no transaction either.
            return int(conn.execute(sql, values).rowcount)
        with transaction(conn):
            for key, data in missing:
                payloads.put(conn, key, data)
            inserted = int(conn.execute(sql, values).rowcount)
        for key, _ in missing:
            self._known.add(key)
        return inserted

    def find_decision(self, event_id: str) -> DecisionRecord | None:
        """Return the stored decision with this event id, if any."""
        row = self.retry(
            lambda: self.conn.execute(
                f"{payloads.DECISION_SELECT} WHERE d.event_id = ?", (event_id,)
            ).fetchone()
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
            try:
                return write() if self.dialect.name == "sqlite" else write_in_one_statement()
            except INTEGRITY_ERRORS as error:
                # PostgreSQL: the decision was pruned between the read and the insert.
                raise UnknownEvent(event_id) from error

        def write() -> FeedbackReceipt:
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
                # Taken inside the transaction, just before the insert commits (after the
                # write lock on SQLite), so the learner's grace period (see Learner)
                # always covers the gap until this commits.
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

        def write_in_one_statement() -> FeedbackReceipt:
            # PostgreSQL: the same steps as `write` in one statement, its own transaction:
            # one round trip instead of four (BEGIN, read, insert, COMMIT).
            now = self.clock()
            row = self.conn.execute(
                _FEEDBACK_ONE_STATEMENT,
                (action_id, event_id, signal, value, dedupe_key, now, now, dedupe_key),
            ).fetchone()
            if row is None:
                raise UnknownEvent(event_id)
            target, inserted = row["target"], row["inserted"]
            if inserted is not None:
                return FeedbackReceipt(event_id, target, signal, duplicate=False, on_time=bool(inserted))
            if row["existing"] is None:
                if target not in [c["action_id"] for c in orjson.loads(row["choices"])]:
                    raise UnknownAction(f"action {target!r} was not offered in event {event_id!r}")
                return write()  # the same post, committed by another writer just now: read it
            return FeedbackReceipt(event_id, target, signal, duplicate=True, on_time=bool(row["existing"]))

        return self.retry(insert)

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
            # Two activations at once: the second waits, then sees the first's and returns False.
            with exclusive(self.conn, f"decision:{event_id}") as conn:
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

        return self.retry(write)


# PostgreSQL's feedback statement (LogStore.record_feedback): the decision, the offer the
# signal is about (the first chosen one unless named), the insert if that offer was
# chosen, and the stored row's on_time when it is a duplicate (the outer SELECT reads the
# statement's snapshot, so it sees a row only if one was there before).
_FEEDBACK_ONE_STATEMENT = """
WITH d AS (
    SELECT event_id, closes_at, choices, deferred, activated_at,
           coalesce(?::text, choices::jsonb -> 0 ->> 'action_id', '') AS target
    FROM decisions WHERE event_id = ?
), ins AS (
    INSERT INTO feedback (event_id, action_id, signal, value, dedupe_key, received_at, on_time)
    SELECT d.event_id, d.target, ?::text, ?::double precision, ?::text, ?::double precision,
           CASE WHEN ?::double precision <= d.closes_at
                 AND NOT (d.deferred <> 0 AND d.activated_at IS NULL) THEN 1 ELSE 0 END
    FROM d
    WHERE EXISTS (SELECT 1 FROM jsonb_array_elements(d.choices::jsonb) c WHERE c ->> 'action_id' = d.target)
    ON CONFLICT DO NOTHING
    RETURNING on_time
)
SELECT d.choices, d.target, (SELECT on_time FROM ins) AS inserted,
       (SELECT f.on_time FROM feedback f
        WHERE f.event_id = d.event_id AND f.action_id = d.target AND f.dedupe_key = ?) AS existing
FROM d
"""
_INSERT_SQL: dict[tuple[tuple[str, ...], bool], str] = {}


def _insert_sql(row: dict[str, object], guarded: bool) -> str:
    """The decision's INSERT; `guarded`, it inserts only if both its payloads exist."""
    key = (tuple(row), guarded)
    sql = _INSERT_SQL.get(key)
    if sql is None:
        names = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        source = (
            f"SELECT {marks} WHERE EXISTS (SELECT 1 FROM payloads WHERE digest = ?)"
            " AND EXISTS (SELECT 1 FROM payloads WHERE digest = ?)"
            if guarded
            else f"VALUES ({marks})"
        )
        sql = _INSERT_SQL[key] = f"INSERT INTO decisions ({names}) {source} ON CONFLICT DO NOTHING"
    return sql
