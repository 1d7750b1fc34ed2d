"""Rollups: the log's aggregates, kept up to date by the learner as the log grows.

The console and /metrics read these small tables instead of scanning the log, so a
page costs the same with a thousand decisions or a million. Four passes, each behind
a watermark kept in ``rollup_state`` and moved in the transaction that adds to the
rollups (a crash redoes a page, never counts it twice):

- new decisions (a position watermark): decisions, exploration, context features, and
  the promotion campaigns' counts (logs/rule_store.py);
- new feedback (a position watermark): feedback per signal, on time or late, and its delay;
- new pacing verdicts (a position watermark): pacing holds and no-offer reasons;
- ended windows (a ``(closes_at, decision id)`` watermark that trails the clock by the
  learner's grace): answered share, reward sum and sum of squares, and offers shown,
  clicked, dismissed and bought. A minute's reward figures therefore only ever count
  decisions whose window ended; the watermark says up to when.

A position is the row's id on SQLite, where one writer at a time makes rows visible
in id order. On PostgreSQL, where writers commit out of id order, it is the writing
transaction's id and then the row's id, read only below the oldest transaction still
running (logs/commit_order.py; docs/scaling.md): exact on both, never a row skipped.
A reward is computed with the rules in force when the window is rolled up (``reward_of``).
"""

from __future__ import annotations

import functools
import math
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from logs import payloads
from logs.commit_order import Position, decision_id, horizon, ordered_read
from logs.connection import LogConnection
from logs.db import exclusive
from logs.ended_rollups import ROLLUPS_LOCK, Contributions, RewardOf, ended_select, feedback_of
from logs.ended_rollups import added as _added
from logs.rollup_figures import (
    DELAY_EDGES_SECONDS,
    FEATURE_BUCKETS,
    delay_bucket,
    explored,
    feature_tokens,
    hashed,
)
from logs.rule_store import CampaignCount, add_counts, counted_of, counted_sql
from logs.store import LogStore

__all__ = [
    "DELAY_EDGES_SECONDS",
    "FEATURE_BUCKETS",
    "RollProgress",
    "Rollups",
    "Watermarks",
    "delay_bucket",
    "feature_tokens",
    "read_watermarks",
]

_BIG_ROWID = 1 << 53  # past any row id, and exact as the REAL the state table keeps
# Transaction ids are 64-bit but stay below 2**53 (exact as a REAL) for 2**21 wraparounds.
_STATE = (
    "decisions_rowid",
    "decisions_xid",
    "feedback_id",
    "feedback_xid",
    "pacing_id",
    "pacing_xid",
    "ended_closes_at",
    "ended_rowid",
    "erasures",
)
_MAX_REFUSED = 3  # pages in one run whose commit may be refused before it gives up until the next
_COUNTED = ("decisions", "explored", "served_baseline", "exploration_share_sum")


@dataclass(frozen=True, slots=True)
class Watermarks:
    """How far each rollup has read; ``updated_at`` is when the chore last ran (None: never).

    ``*_xid`` are PostgreSQL's writer transaction ids (logs/commit_order.py), 0 on SQLite;
    ``decisions_rowid`` and ``ended_rowid`` are the decision's rowid there, its seq here.
    """

    decisions_rowid: int = 0
    feedback_id: int = 0
    pacing_id: int = 0
    ended_closes_at: float = float("-inf")  # every decision closed by then is in the reward rollups
    ended_rowid: int = 0
    updated_at: float | None = None
    decisions_xid: int = 0
    feedback_xid: int = 0
    pacing_xid: int = 0
    erasures: int = 0  # moved by every erasure that changed decisions (logs/ended_rollups.py)

    @property
    def decisions(self) -> Position:
        return Position(self.decisions_xid, self.decisions_rowid)

    @property
    def feedback(self) -> Position:
        return Position(self.feedback_xid, self.feedback_id)

    @property
    def pacing(self) -> Position:
        return Position(self.pacing_xid, self.pacing_id)


@dataclass(frozen=True, slots=True)
class RollProgress:
    """Rows each pass added in one run; ``done`` is False when the run stopped at its row budget."""

    decisions: int = 0
    feedback: int = 0
    pacing: int = 0
    ended: int = 0
    done: bool = True


class Rollups:
    """Keep the rollup tables in step with the log (the learner runs ``roll`` as a chore)."""

    def __init__(self, store: LogStore):
        self.store = store
        self._ended_read: Watermarks | None = None

    def watermarks(self) -> Watermarks:
        """Return how far the rollups have read the log."""
        return self.store.retry(lambda: read_watermarks(self.store.conn))

    def roll(
        self,
        *,
        now: float,
        grace_seconds: float,
        reward_of: RewardOf,
        max_rows: int = 50_000,
        page: int = 2000,
        budget_seconds: float | None = None,
    ) -> RollProgress:
        """Add what the log gained since the last run; at most `max_rows` rows per pass.

        With `budget_seconds`, each of the four passes stops after its quarter of it (at
        a page boundary), so a learner catching up on a large log keeps learning between
        runs; the figures say they are stale until the rollups have caught up.

        Windows count as ended up to ``now - grace_seconds``: feedback is stamped inside
        its write transaction, so by then every on-time signal of those decisions is
        visible.
        """
        counts: list[int] = []
        done = True
        share = None if budget_seconds is None else budget_seconds / 4
        passes: tuple[Callable[[int], int | None], ...] = (
            self._decisions_page,
            self._feedback_page,
            self._pacing_page,
        )
        for step in passes:
            added, finished = self._run(functools.partial(step, page), max_rows, share)
            counts.append(added)
            done = done and finished
        until = now - grace_seconds
        self._ended_read = None
        added, finished = self._run(lambda: self._ended_page(until, reward_of, page), max_rows, share)
        # Past the last page to `until`, expecting the watermarks that empty page read: if
        # anything moved them since (another roller, an erasure), the move is refused.
        marks = self._ended_read
        if finished and marks is not None and until > marks.ended_closes_at:  # never back
            state = {"ended_closes_at": until, "ended_rowid": _BIG_ROWID}
            self.store.retry(lambda: self._write(state, expect=marks, now=now))
        return RollProgress(counts[0], counts[1], counts[2], added, done and finished)

    def _run(self, page: Callable[[], int | None], max_rows: int, seconds: float | None) -> tuple[int, bool]:
        """Run pages until one finds nothing (finished), or the rows or time run out. A page
        whose commit was refused (None: its watermarks moved meanwhile) is read again, a
        few times at most, and never taken for the end."""
        total, refused = 0, 0
        deadline = math.inf if seconds is None else time.monotonic() + seconds
        while total < max_rows and time.monotonic() < deadline and refused < _MAX_REFUSED:
            added = self.store.retry(page)
            if added is None:
                refused += 1
                continue
            if added == 0:
                return total, True
            total += added
        return total, False

    # -- passes ----------------------------------------------------------------------

    def _past(self, alias: str, id_column: str, after: Position) -> tuple[str, str, tuple[int, ...]]:
        """(columns, WHERE ... ORDER BY ..., parameters) reading past `after`, exactly (commit_order)."""
        dialect = self.store.dialect
        read = ordered_read(dialect, alias, id_column, bounded=True)
        params = read.params(after, horizon(self.store.conn, dialect))
        return read.columns, f"WHERE {read.condition} ORDER BY {read.order}", params

    def _decisions_page(self, limit: int) -> int | None:
        marks = self.watermarks()
        position, where, params = self._past("d", decision_id(self.store.dialect), marks.decisions)
        rows = self.store.conn.execute(
            f"SELECT {position}, d.created_at, d.model_version, d.probabilities, d.choices, d.context,"
            " d.context_ref, pc.codec AS context_codec, pc.body AS context_body, d.exploration_share,"
            f" d.served_baseline, {counted_sql(self.store.dialect, 'd.rules')} AS counted"
            " FROM decisions d LEFT JOIN payloads pc ON pc.digest = d.context_ref"
            f" {where} LIMIT ?",
            (*params, limit),
        ).fetchall()
        if not rows:
            return 0
        by_minute: dict[tuple[int, str], list[float]] = defaultdict(lambda: [0, 0, 0, 0.0])
        features: Counter[tuple[int, str, int]] = Counter()
        examples: dict[tuple[int, str, int], str] = {}
        parsed: dict[bytes, list[tuple[str, str, int]]] = {}  # a shared context is hashed once
        campaigns: list[CampaignCount] = []
        for row in rows:
            campaigns += counted_of(row["counted"])
            minute = int(row["created_at"] // 60)
            totals = by_minute[(minute, row["model_version"])]
            totals[0] += 1
            totals[1] += explored(row["probabilities"], row["choices"])
            totals[2] += int(bool(row["served_baseline"]))
            totals[3] += float(row["exploration_share"] or 0.0)
            shared = row["context_ref"]
            tokens = parsed.get(shared) if shared is not None else None
            if tokens is None:
                tokens = hashed(orjson.loads(payloads.read(row, "context")))
                if shared is not None:
                    parsed[shared] = tokens
            for namespace, name, bucket in tokens:
                key = (minute, namespace, bucket)
                features[key] += 1
                examples.setdefault(key, name)
        last = Position.of(rows[-1])

        def write(conn: LogConnection) -> None:
            conn.executemany(
                "INSERT INTO rollup_decisions"
                " (minute, model_version, decisions, explored, served_baseline, exploration_share_sum)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (minute, model_version) DO UPDATE SET"
                + _added("rollup_decisions", *_COUNTED),
                [(m, v, *t) for (m, v), t in by_minute.items()],
            )
            versions: Counter[str] = Counter()
            for (_, version), totals in by_minute.items():
                versions[version] += int(totals[0])
            _add_totals(conn, "decisions", versions)
            conn.executemany(
                "INSERT INTO rollup_features (minute, namespace, bucket, count, example)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (minute, namespace, bucket) DO UPDATE SET"
                + _added("rollup_features", "count"),
                [(*key, n, examples[key]) for key, n in features.items()],
            )
            add_counts(conn, campaigns)

        state = {"decisions_xid": last.xid, "decisions_rowid": last.row_id}
        return len(rows) if self._commit(state, marks, write) else None

    def _feedback_page(self, limit: int) -> int | None:
        marks = self.watermarks()
        position, where, params = self._past("f", "id", marks.feedback)
        rows = self.store.conn.execute(
            f"SELECT {position}, f.signal, f.on_time, f.received_at,"
            " coalesce(d.activated_at, d.created_at) AS shown_at"
            f" FROM feedback f JOIN decisions d USING (event_id) {where} LIMIT ?",
            (*params, limit),
        ).fetchall()
        if not rows:
            return 0
        counts = Counter(
            (
                int(r["received_at"] // 60),
                r["signal"],
                int(r["on_time"]),
                delay_bucket(r["received_at"] - r["shown_at"]),
            )
            for r in rows
        )

        def write(conn: LogConnection) -> None:
            conn.executemany(
                "INSERT INTO rollup_feedback (minute, signal, on_time, delay_bucket, count)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (minute, signal, on_time, delay_bucket) DO UPDATE SET"
                + _added("rollup_feedback", "count"),
                [(*key, n) for key, n in counts.items()],
            )
            signals: Counter[str] = Counter()
            for (_, signal, _, _), n in counts.items():
                signals[signal] += n
            _add_totals(conn, "feedback", signals)

        last = Position.of(rows[-1])
        state = {"feedback_xid": last.xid, "feedback_id": last.row_id}
        return len(rows) if self._commit(state, marks, write) else None

    def _pacing_page(self, limit: int) -> int | None:
        marks = self.watermarks()
        position, where, params = self._past("p", "id", marks.pacing)
        rows = self.store.conn.execute(
            f"SELECT {position}, p.at, p.verdict, p.reason FROM pacing_log p {where} LIMIT ?",
            (*params, limit),
        ).fetchall()
        if not rows:
            return 0
        counts = Counter((int(r["at"] // 60), r["verdict"], r["reason"]) for r in rows)

        def write(conn: LogConnection) -> None:
            conn.executemany(
                "INSERT INTO rollup_pacing (minute, verdict, reason, count) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (minute, verdict, reason) DO UPDATE SET" + _added("rollup_pacing", "count"),
                [(*key, n) for key, n in counts.items()],
            )

        last = Position.of(rows[-1])
        state = {"pacing_xid": last.xid, "pacing_id": last.row_id}
        return len(rows) if self._commit(state, marks, write) else None

    def _ended_page(self, until: float, reward_of: RewardOf, limit: int) -> int | None:
        marks = self.watermarks()
        self._ended_read = marks  # what an empty page read: the final move expects it
        after = (marks.ended_closes_at, marks.ended_rowid)
        row_id = f"d.{decision_id(self.store.dialect)}"
        conn = self.store.conn
        conn.execute("BEGIN")  # decisions and their feedback from one snapshot
        try:
            rows = conn.execute(
                f"{ended_select(self.store.dialect)}"
                f" WHERE d.closes_at >= ? AND (d.closes_at, {row_id}) > (?, ?) AND d.closes_at <= ?"
                f" ORDER BY d.closes_at, {row_id} LIMIT ?",
                (after[0], *after, until, limit),
            ).fetchall()
            feedback = feedback_of(conn, [r["event_id"] for r in rows])
        finally:
            conn.execute("COMMIT")
        if not rows:
            return 0
        contributions = Contributions()
        contributions.add(rows, feedback, reward_of)
        last = rows[-1]
        state = {"ended_closes_at": last["closes_at"], "ended_rowid": last["row_id"]}
        return len(rows) if self._commit(state, marks, contributions.write) else None

    # -- state -----------------------------------------------------------------------

    def _commit(
        self, state: Mapping[str, float], expect: Watermarks, write: Callable[[LogConnection], None]
    ) -> bool:
        """Add to the rollups and move the watermark in one transaction, if nobody moved it first."""
        return self._write(state, expect=expect, now=None, write=write)

    def _write(
        self,
        state: Mapping[str, float],
        *,
        expect: Watermarks | None,
        now: float | None,
        write: Callable[[LogConnection], None] | None = None,
    ) -> bool:
        # A second roller (a bench beside a learner, another node) must not add the same
        # page twice: the state is read and moved under one lock (BEGIN IMMEDIATE on SQLite).
        with exclusive(self.store.conn, ROLLUPS_LOCK) as conn:
            if expect is not None and read_watermarks(conn) != expect:
                return False
            if write is not None:
                write(conn)
            stamp = self.store.clock() if now is None else now
            conn.executemany(
                "INSERT INTO rollup_state (name, value, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                [(name, float(value), stamp) for name, value in state.items()],
            )
        return True


def _add_totals(conn: LogConnection, name: str, counts: Mapping[str, int]) -> None:
    conn.executemany(
        "INSERT INTO rollup_totals (name, key, count) VALUES (?, ?, ?)"
        " ON CONFLICT (name, key) DO UPDATE SET" + _added("rollup_totals", "count"),
        [(name, key, n) for key, n in counts.items()],
    )


def read_watermarks(conn: LogConnection) -> Watermarks:
    """How far the rollups have read the log, read on `conn` (in its transaction, if any)."""
    return _watermarks(conn.execute("SELECT name, value, updated_at FROM rollup_state", ()).fetchall())


def _watermarks(rows: Sequence[Any]) -> Watermarks:
    values = {row["name"]: row["value"] for row in rows if row["name"] in _STATE}
    stamps = [row["updated_at"] for row in rows if row["name"] != "erasures"]  # not a chore's run
    return Watermarks(
        decisions_rowid=int(values.get("decisions_rowid", 0)),
        feedback_id=int(values.get("feedback_id", 0)),
        pacing_id=int(values.get("pacing_id", 0)),
        ended_closes_at=float(values.get("ended_closes_at", float("-inf"))),
        ended_rowid=int(values.get("ended_rowid", 0)),
        updated_at=max(stamps) if stamps else None,
        decisions_xid=int(values.get("decisions_xid", 0)),
        feedback_xid=int(values.get("feedback_xid", 0)),
        pacing_xid=int(values.get("pacing_xid", 0)),
        erasures=int(values.get("erasures", 0)),
    )
