"""Reading a table past a watermark so that no row is ever skipped, on either backend.

SQLite has one writer at a time: a row's id (the rowid, or an INTEGER PRIMARY KEY) is
handed out inside the write transaction, which commits before the next writer starts,
so rows become visible in id order and ``id > watermark`` is exact.

PostgreSQL runs writers side by side, and an id comes from a sequence when the row is
inserted, not when it commits: a transaction holding id 100 may commit after id 101
was read, and a reader that moved its watermark to 101 would skip 100 forever. So
each row there also records the transaction that wrote it (``txid``, filled in by
``pg_current_xact_id()``: migration m015), and a reader

1. first reads its *horizon*: the lowest id among the transactions its snapshot
   (``pg_current_snapshot()``) counts as running, or the snapshot's xmax when none is.
   Every transaction below it has finished, committed or rolled back, and every one
   still running, or yet to write, has an id at or above it. A running transaction
   that pg_stat_activity shows in another database of the server is left out: it
   cannot write this database's tables, and another application's long transaction
   must not hold the log's readers back. (One it cannot see, say another role's
   without pg_read_all_stats, counts: too careful, never wrong.)
2. then, in a later statement, reads the rows with ``txid`` below the horizon past its
   watermark, in ``(txid, id)`` order.

Rows below the horizon never change again and the later statement sees all of them.
So a ``(txid, id)`` watermark walks over a prefix that only grows at its end, and
every row is read exactly once. A row whose writer is still running waits until it
finishes: a long write transaction in this database (a bulk import, a session left
idle in a transaction) holds the reader back for that long but never makes it wrong.
Rows copied from SQLite (``xsell logs copy``) carry txid 0, written before any
PostgreSQL transaction, in their SQLite order.

Without a horizon (``bounded=False``) the same order reads everything visible past
the watermark: the rows a reader has not reached yet (logs/rollup_queries.py tails).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from logs.connection import LogConnection
from logs.dialect import Dialect

__all__ = ["OrderedRead", "Position", "decision_id", "horizon", "ordered_read"]


@dataclass(frozen=True, slots=True, order=True)
class Position:
    """Where a reader stands: the writer's transaction id (always 0 on SQLite) and the row's id."""

    xid: int = 0
    row_id: int = 0

    @classmethod
    def of(cls, row: Any) -> Position:
        """The position of a row read with OrderedRead.columns."""
        return cls(int(row["pos_xid"]), int(row["pos_id"]))


@dataclass(frozen=True, slots=True)
class OrderedRead:
    """SQL pieces that read one table past a Position, in the order positions grow."""

    columns: str  # select list: pos_xid, pos_id
    condition: str  # WHERE ... (placeholders: see params)
    order: str  # ORDER BY ...
    sqlite: bool
    bounded: bool

    def params(self, after: Position, horizon: int | None) -> tuple[int, ...]:
        """Parameters for `condition`: rows after `after` (and below `horizon` when bounded)."""
        if self.sqlite:
            return (after.row_id,)
        if self.bounded:
            if horizon is None:
                raise ValueError("a bounded read on PostgreSQL needs the horizon (commit_order.horizon)")
            return (after.xid, after.row_id, horizon)
        return (after.xid, after.row_id)


def decision_id(dialect: Dialect) -> str:
    """The column that numbers decisions in insertion order (decisions' key is the event id)."""
    return "rowid" if dialect.name == "sqlite" else "seq"


def ordered_read(dialect: Dialect, alias: str, id_column: str, *, bounded: bool) -> OrderedRead:
    """How to read `alias` (a table alias in the query) past a watermark on this backend."""
    row_id = f"{alias}.{id_column}"
    if dialect.name == "sqlite":
        return OrderedRead(f"0 AS pos_xid, {row_id} AS pos_id", f"{row_id} > ?", row_id, True, bounded)
    key = f"{alias}.txid, {row_id}"
    condition = f"({key}) > (?, ?)" + (f" AND {alias}.txid < ?" if bounded else "")
    return OrderedRead(f"{alias}.txid AS pos_xid, {row_id} AS pos_id", condition, key, False, bounded)


# The snapshot's running transactions (xip) less those pg_stat_activity places, now,
# in another database; 64-bit ids compare with backend_xid's 32 bits exactly, since
# running transactions are never 2**31 apart.
_HORIZON = """
WITH snap AS (SELECT pg_current_snapshot() AS s)
SELECT coalesce(
    (SELECT min(x::text::bigint) FROM snap, pg_snapshot_xip(snap.s) AS x
     WHERE NOT EXISTS (
         SELECT 1 FROM pg_stat_activity a
         WHERE a.backend_xid = x::xid
           AND a.datid <> (SELECT oid FROM pg_database WHERE datname = current_database()))),
    (SELECT pg_snapshot_xmax(s)::text::bigint FROM snap)) AS horizon
"""


def horizon(conn: LogConnection, dialect: Dialect) -> int | None:
    """PostgreSQL: the lowest transaction id that may still write here (step 1 above); SQLite: None.

    Read in its own statement, before the rows: their statement's snapshot is then
    later, so it sees every transaction below this one finished.
    """
    if dialect.name == "sqlite":
        return None
    row = conn.execute(_HORIZON, ()).fetchone()
    return int(row["horizon"])
