"""Footprint: how much disk the log takes, how soon it reaches its budget, and pruning to it.

The budget bounds the whole SQLite file (and its WAL), or on PostgreSQL the log's
tables with their indexes. Pruning deletes the oldest decisions first, in small
transactions so a rank waits at most one batch, and never one whose reward window is
still open or (unless nothing learns) one no published model has learned yet.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from logs import payloads
from logs.connection import LogConnection, StoreBase
from logs.db import transaction

__all__ = [
    "DAY_SECONDS",
    "NO_BUDGET",
    "Footprint",
    "LogFootprint",
    "auto_budget_bytes",
    "budget_from_mb",
    "describe",
]

DAY_SECONDS = 86400.0
# PostgreSQL's disk is the server's, which xsell cannot see: without a configured budget
# the log there has none (the server's own monitoring watches its disk).
NO_BUDGET = 2**63 - 1
# Past this many decisions (by the planner's estimate) PostgreSQL's count is the estimate:
# an exact count(*) reads the whole table, and /metrics asks at every scrape.
EXACT_COUNT_UP_TO = 1_000_000
# Pruning stops this far under the budget, so it runs now and then rather than at every decision.
PRUNE_TO_SHARE = 0.9


@dataclass(frozen=True, slots=True)
class LogFootprint:
    """The log's size now and how fast it grows."""

    used_bytes: int  # pages of the database file in use (free pages are reused first); PG: tables + indexes
    decisions: int
    decisions_per_day: float  # over the last day, or since the first decision if the log is younger
    budget_bytes: int

    @property
    def bytes_per_decision(self) -> float | None:
        return self.used_bytes / self.decisions if self.decisions else None

    @property
    def days_until_budget(self) -> float | None:
        """Days until the log reaches its budget at today's rate; None when it does not grow or has none."""
        if self.budget_bytes >= NO_BUDGET:
            return None
        if self.used_bytes >= self.budget_bytes:
            return 0.0
        per = self.bytes_per_decision
        if not per or self.decisions_per_day <= 0:
            return None
        return (self.budget_bytes - self.used_bytes) / (per * self.decisions_per_day)


def auto_budget_bytes(path: Path, used_bytes: int) -> int:
    """The default budget: what the log uses plus half the disk's free space.

    Recomputed at every check, so the log never takes more than half of what is left
    when other files grow too: it cannot fill the disk.
    """
    free = shutil.disk_usage(Path(path).parent).free
    return used_bytes + free // 2


class Footprint(StoreBase):
    """Measure the log against its budget and prune it back under."""

    def used_bytes(self) -> int:
        """Bytes of the database file in use (free pages are reused before the file grows).

        The WAL is left out: checkpoints bound it, and logs.db caps what it keeps on
        disk afterwards (WAL_LIMIT_BYTES), so it is headroom, not growth.

        On PostgreSQL: the bytes of the log's live rows. Its files never shrink after
        a delete (the space is reused once vacuumed, as SQLite reuses free pages), so
        their size cannot show that pruning worked; the rows can.
        """
        if self.is_postgresql:
            return int(self.retry(lambda: _live_row_bytes(self.conn)))
        pages, free, size = self.retry(
            lambda: (
                self.conn.execute("PRAGMA page_count").fetchone()[0],
                self.conn.execute("PRAGMA freelist_count").fetchone()[0],
                self.conn.execute("PRAGMA page_size").fetchone()[0],
            )
        )
        return int((pages - free) * size)

    def footprint(self, budget_bytes: int | None = None) -> LogFootprint:
        """Return the log's size, growth and budget (`budget_bytes` None: the default budget)."""
        used = self.used_bytes()
        now = self.clock()
        count = self._count_postgresql if self.is_postgresql else self._count_sqlite
        total, oldest, recent = self.retry(lambda: count(now - DAY_SECONDS))
        span = min(DAY_SECONDS, now - oldest) if oldest is not None else 0.0
        rate = recent / span * DAY_SECONDS if span > 0 else 0.0
        if budget_bytes is not None:
            budget = budget_bytes
        elif self.path is None:
            budget = NO_BUDGET
        else:
            budget = auto_budget_bytes(self.path, used)
        return LogFootprint(used, total, rate, budget)

    def _count_sqlite(self, since: float) -> tuple[int, float | None, int]:
        """(decisions, the oldest one's time, decisions made after `since`)."""
        # Index seeks only, never a count over millions of rows (a /metrics scrape
        # runs this): decisions are appended, so rowids run in the order of
        # created_at and a rowid range counts the rows in it (deletions take the
        # oldest, so the range stays whole).
        # Two statements: SQLite seeks for one min() or max(), but scans for both at once.
        first = self.conn.execute("SELECT min(rowid) FROM decisions").fetchone()[0]
        last = self.conn.execute("SELECT max(rowid) FROM decisions").fetchone()[0]
        if first is None:
            return 0, None, 0
        oldest = self.conn.execute("SELECT min(created_at) FROM decisions").fetchone()[0]
        found = self.conn.execute(
            "SELECT rowid FROM decisions WHERE created_at > ? ORDER BY created_at LIMIT 1", (since,)
        ).fetchone()
        return last - first + 1, oldest, 0 if found is None else last - found[0] + 1

    def _count_postgresql(self, since: float) -> tuple[int, float | None, int]:
        # No rowid here: the planner's estimate once the table is large, else an exact count.
        conn = self.conn
        oldest = conn.execute("SELECT min(created_at) FROM decisions").fetchone()[0]
        if oldest is None:
            return 0, None, 0
        estimate = conn.execute(
            "SELECT reltuples FROM pg_class WHERE oid = 'decisions'::regclass"
        ).fetchone()[0]
        if estimate > EXACT_COUNT_UP_TO:
            total = int(estimate)
        else:
            total = int(conn.execute("SELECT count(*) FROM decisions").fetchone()[0])
        recent = int(
            conn.execute("SELECT count(*) FROM decisions WHERE created_at > ?", (since,)).fetchone()[0]
        )
        return max(total, int(recent)), oldest, int(recent)

    def prune_to_budget(
        self,
        budget_bytes: int | None = None,
        *,
        keep_unlearned: bool = True,
        batch: int = 200,
        max_batches: int = 50,
        created_before: float = math.inf,
        closed_by: float = math.inf,
    ) -> int:
        """Delete the oldest closed decisions until the log is under its budget; return how many.

        Stops at `max_batches` (the next call goes on) or when nothing more may go:
        a decision whose window is open, or that no model learned when `keep_unlearned`
        (False when nothing learns, as in logging_only mode), stays; so does one made
        from `created_before` on or closed after `closed_by` (what the archive holds:
        logs/archive.py).
        """
        found = self.footprint(budget_bytes)
        if found.used_bytes <= found.budget_bytes or not found.bytes_per_decision:
            return 0
        target = found.budget_bytes * PRUNE_TO_SHARE
        wanted = math.ceil((found.used_bytes - target) / found.bytes_per_decision)
        removed = 0
        while removed < wanted and max_batches > 0:
            max_batches -= 1
            ids = self._prunable(
                min(batch, wanted - removed),
                keep_unlearned=keep_unlearned,
                created_before=created_before,
                closed_by=closed_by,
            )
            if not ids:
                break
            removed += self.delete_decisions(ids)
        return removed

    def _prunable(
        self, limit: int, *, keep_unlearned: bool, created_before: float, closed_by: float
    ) -> list[str]:
        # Learned means the decision and its on-time feedback (a correction may be pending).
        learned = (
            " AND learned_in IS NOT NULL AND NOT EXISTS (SELECT 1 FROM feedback f"
            " WHERE f.event_id = decisions.event_id AND f.learned_in IS NULL AND f.on_time = 1)"
            if keep_unlearned
            else ""
        )
        rows = self.retry(
            lambda: self.conn.execute(
                "SELECT event_id FROM decisions WHERE closes_at <= ? AND created_at < ?"
                f"{learned} ORDER BY created_at LIMIT ?",
                (min(self.clock(), closed_by), created_before, limit),
            ).fetchall()
        )
        return [r[0] for r in rows]

    def delete_decisions(self, event_ids: Sequence[str]) -> int:
        """Delete these decisions with their feedback, shadow scores and now unused payloads.

        Pacing history older than the oldest decision kept goes too. One transaction.
        """
        if not event_ids:
            return 0
        marks = ", ".join("?" * len(event_ids))

        def write() -> int:
            with transaction(self.conn) as conn:
                payloads.hold_decisions(conn, self.dialect)
                refs = [
                    ref
                    for row in conn.execute(
                        f"SELECT actions_ref, context_ref FROM decisions WHERE event_id IN ({marks})",
                        event_ids,
                    )
                    for ref in row
                    if ref is not None
                ]
                conn.execute(f"DELETE FROM feedback WHERE event_id IN ({marks})", event_ids)
                conn.execute(f"DELETE FROM shadow_scores WHERE event_id IN ({marks})", event_ids)
                removed = conn.execute(
                    f"DELETE FROM decisions WHERE event_id IN ({marks})", event_ids
                ).rowcount
                payloads.release(conn, refs)
                oldest = conn.execute("SELECT min(created_at) FROM decisions").fetchone()[0]
                if oldest is not None:
                    conn.execute("DELETE FROM shopper_events WHERE at < ?", (oldest,))
                    conn.execute("DELETE FROM pacing_log WHERE at < ?", (oldest,))
                return int(removed)

        return self.retry(write)


# A heap row's header (23 bytes, aligned to 24) and its line pointer (4).
_ROW_OVERHEAD_BYTES = 28


def _live_row_bytes(conn: LogConnection) -> int:
    """The log's live rows in bytes on PostgreSQL (TOASTed values included, indexes not).

    Exact (one pass over each table) while a table is small; past EXACT_COUNT_UP_TO rows,
    from the planner's statistics (autovacuum keeps them recent), as /metrics asks often.
    """
    tables = conn.execute(
        "SELECT c.relname, c.reltuples FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relname NOT IN (?, ?)",
        ("_xsell_migrations", "models_blob"),  # model files are kept by their own retention
    ).fetchall()
    total = 0
    for name, estimate in tables:
        if estimate > EXACT_COUNT_UP_TO:
            width = conn.execute(
                "SELECT COALESCE(sum(avg_width), 0) FROM pg_stats"
                " WHERE schemaname = current_schema() AND tablename = ?",
                (name,),
            ).fetchone()[0]
            total += int(estimate * (width + _ROW_OVERHEAD_BYTES))
            continue
        rows, data = conn.execute(
            f'SELECT count(*), COALESCE(sum(pg_column_size(t.*)), 0) FROM "{name}" t'
        ).fetchone()
        total += int(data) + rows * _ROW_OVERHEAD_BYTES
    return total


def budget_from_mb(megabytes: float) -> int | None:
    """The budget a setting in megabytes names (0: None, the default budget)."""
    return int(megabytes * 1_000_000) or None


def describe(found: LogFootprint) -> str:
    """One line for an operator: use, budget, bytes per decision and days left."""
    days = found.days_until_budget
    left = "it does not grow" if days is None else f"about {days:.1f} days until the budget is reached"
    per = found.bytes_per_decision
    each = f", {per:.0f} bytes a decision" if per else ""
    if found.budget_bytes >= NO_BUDGET:
        used = found.used_bytes / 1e6
        return f"the log takes {used:.1f} MB, no budget set ({found.decisions} decisions{each})"
    return (
        f"the log takes {found.used_bytes / 1e6:.1f} MB of its {found.budget_bytes / 1e6:.1f} MB budget"
        f" ({found.decisions} decisions{each}, {found.decisions_per_day:.0f} a day): {left}"
    )
