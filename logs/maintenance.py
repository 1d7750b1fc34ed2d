"""Maintenance: age retention, checkpoints and the health probes of the log."""

from __future__ import annotations

import math
import os

from logs import payloads
from logs.connection import StoreBase
from logs.db import LogUnavailable, retrying, transaction

__all__ = ["MIN_FREE_BYTES", "Maintenance"]

# Below this much free space readiness fails: a decision with its WAL frames needs
# tens of kilobytes, and a checkpoint more.
MIN_FREE_BYTES = 1 << 20


class Maintenance(StoreBase):
    """What keeps the log healthy and bounded; none of it runs on the rank path."""

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

        removed = self.retry(write)
        removed["payloads"] = self.sweep_payloads()
        return removed

    def sweep_payloads(self, *, batch: int = 500) -> int:
        """Delete payloads no decision refers to any more, a batch per transaction.

        Each batch is found first and deleted under `payloads.hold_decisions`, each one
        checked again there, so decision writers wait only for the deletes.
        """
        total = 0
        while True:

            def write() -> tuple[int, int]:
                with transaction(self.conn) as conn:
                    found = payloads.unreferenced(conn, limit=batch)
                    if not found:
                        return 0, 0
                    payloads.hold_decisions(conn, self.dialect)
                    return payloads.release(conn, found), len(found)

            removed, found = self.retry(write)
            total += removed
            if found < batch:
                return total

    def decisions_within_window(self, now: float | None = None) -> int:
        """Return how many decisions' reward windows have not ended (deferred ones included)."""
        at = self.clock() if now is None else now
        row = self.retry(
            lambda: self.conn.execute("SELECT count(*) FROM decisions WHERE closes_at > ?", (at,)).fetchone()
        )
        return int(row[0])

    def decisions_open_between(self, start: float, end: float, *, now: float) -> int:
        """Return how many decisions made in [start, end) have a reward window still open at `now`.

        A deferred decision never activated (closes_at = +inf) is not counted: it may never close.
        """
        row = self.retry(
            lambda: self.conn.execute(
                "SELECT count(*) FROM decisions WHERE created_at >= ? AND created_at < ?"
                " AND closes_at > ? AND closes_at < ?",
                (start, end, now, math.inf),
            ).fetchone()
        )
        return int(row[0])

    def decision_time_range(self) -> tuple[float, float] | None:
        """Return when the oldest and the newest logged decisions were made, if any."""
        row = self.retry(
            lambda: self.conn.execute("SELECT min(created_at), max(created_at) FROM decisions").fetchone()
        )
        return None if row[0] is None else (row[0], row[1])

    def has_schema(self) -> bool:
        """Whether this database holds an xsell log (so a stray SQLite file is refused by name)."""
        sql = (
            "SELECT count(*) FROM information_schema.tables"
            " WHERE table_schema = current_schema() AND table_name IN ('decisions', 'feedback')"
            if self.is_postgresql
            else "SELECT count(*) FROM sqlite_master"
            " WHERE type = 'table' AND name IN ('decisions', 'feedback')"
        )
        found = self.retry(lambda: self.conn.execute(sql).fetchone()[0])
        return bool(found == 2)

    def checkpoint(self) -> None:
        """Copy what the WAL holds back into the database without waiting for readers.

        The learner calls this every second or so, so that web workers never pay for
        a checkpoint (and its fsync) inside a request. PostgreSQL checkpoints by itself:
        nothing to do there.
        """
        if self.is_postgresql:
            return
        self.retry(lambda: self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone())

    def check_writable(self) -> None:
        """Raise LogUnavailable unless the log can take a write right now."""
        if self.is_postgresql:
            self._check_postgresql_writable()
            return

        def probe() -> None:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.execute("ROLLBACK")

        # retrying() already turns every SQLite failure into LogUnavailable; a probe
        # waits two seconds at most.
        retrying(probe, deadline_seconds=min(self._deadline, 2.0))
        # Taking the lock needs no space, so a full disk would pass the probe while
        # every insert fails: look at the free space too.
        disk = os.statvfs(self.sqlite_path.parent)
        free = disk.f_bavail * disk.f_frsize
        if free < MIN_FREE_BYTES:
            raise LogUnavailable(f"the disk holding the log is full ({free} bytes free)")

    def _check_postgresql_writable(self) -> None:
        # A standby (or a server put read-only) answers reads but refuses every write.
        from logs import postgres

        row = postgres.retrying(
            lambda: self.conn.execute(
                "SELECT pg_is_in_recovery(), current_setting('transaction_read_only')"
            ).fetchone(),
            deadline_seconds=min(self._deadline, 2.0),
        )
        if row[0] or row[1] == "on":
            raise LogUnavailable("the PostgreSQL server is read-only (a standby, or read-only mode)")
