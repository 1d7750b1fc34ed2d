"""ShopperStore: preferences, pacing history and erasure, keyed by a hash of the shopper id."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from logs import payloads
from logs.connection import LogConnection
from logs.db import LogUnavailable, exclusive, transaction
from logs.dialect import SQLITE, Dialect
from logs.ended_rollups import ROLLUPS_LOCK, RewardOf, restated
from logs.store import LogStore
from policies.learning.rewards import RAW_REWARD, RewardRules
from policies.offers.pacing import ShopperEvent

__all__ = ["Erasure", "Preferences", "ShopperStore"]

_UPSERT_SHOPPER = SQLITE.upsert(  # ``?`` placeholders: the connection translates them
    "shoppers", ("shopper_key", "muted", "frequency", "personalised", "updated_at"), ("shopper_key",)
)


@dataclass(frozen=True, slots=True)
class Preferences:
    muted: tuple[str, ...] = ()  # categories or families the shopper is not interested in
    frequency: str = "normal"  # off, fewer, normal
    personalised: bool = True


class ShopperStore:
    """Everything xsell keeps about a shopper, all of it erasable by one call."""

    def __init__(self, store: LogStore):
        self.store = store

    @property
    def _deadline(self) -> float:
        return self.store.options.busy_timeout_seconds

    def preferences(self, key: str) -> Preferences:
        """Return the shopper's preferences (the defaults if they set none)."""
        row = self.store.retry(
            lambda: self.store.conn.execute("SELECT * FROM shoppers WHERE shopper_key = ?", (key,)).fetchone()
        )
        if row is None:
            return Preferences()
        return Preferences(tuple(orjson.loads(row["muted"])), row["frequency"], bool(row["personalised"]))

    def save_preferences(self, key: str, preferences: Preferences) -> None:
        """Store the shopper's preferences; they apply from the next request."""

        def write() -> None:
            with transaction(self.store.conn) as conn:
                conn.execute(
                    _UPSERT_SHOPPER,
                    (
                        key,
                        orjson.dumps(sorted(set(preferences.muted))).decode(),
                        preferences.frequency,
                        int(preferences.personalised),
                        self.store.clock(),
                    ),
                )

        self.store.retry(write)

    def recent_events(self, key: str, *, since: float) -> list[ShopperEvent]:
        """Return what the shopper was shown and how they answered since `since`."""
        rows = self.store.retry(
            lambda: self.store.conn.execute(
                "SELECT kind, at, category FROM shopper_events WHERE shopper_key = ? AND at >= ? ORDER BY at",
                (key, since),
            ).fetchall()
        )
        return [ShopperEvent(r["kind"], r["at"], r["category"]) for r in rows]

    def record_shown(
        self, key: str, event_id: str, offers: Sequence[tuple[str, str]], *, verdict: str, reason: str
    ) -> None:
        """Record the offers (sku, category) shown for `event_id`, and the pacing verdict."""
        now = self.store.clock()

        def write() -> None:
            with transaction(self.store.conn) as conn:
                conn.executemany(
                    "INSERT INTO shopper_events (shopper_key, event_id, sku, category, kind, at)"
                    " VALUES (?, ?, ?, ?, 'shown', ?)",
                    [(key, event_id, sku, category, now) for sku, category in offers],
                )
                conn.execute(
                    "INSERT INTO pacing_log (at, shopper_key, event_id, verdict, reason)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (now, key, event_id, verdict, reason),
                )

        self.store.retry(write)

    def record_verdict(self, key: str | None, verdict: str, reason: str) -> None:
        """Record a pacing verdict that showed nothing."""

        def write() -> None:
            with transaction(self.store.conn) as conn:
                conn.execute(
                    "INSERT INTO pacing_log (at, shopper_key, event_id, verdict, reason)"
                    " VALUES (?, ?, NULL, ?, ?)",
                    (self.store.clock(), key, verdict, reason),
                )

        self.store.retry(write)

    def record_response(self, event_id: str, action_id: str, signal: str) -> None:
        """Turn feedback on a shown offer into a pacing event (dismiss, or positive)."""
        kind = "dismiss" if signal == "dismiss" else "positive" if signal != "reward" else None
        if kind is None:
            return

        def write() -> None:
            # One statement (a round trip on PostgreSQL, where every feedback post runs
            # it): copy the shopper and category of the offer shown, if a shopper id was
            # given for this decision; otherwise nothing is inserted.
            self.store.conn.execute(
                "INSERT INTO shopper_events (shopper_key, event_id, sku, category, kind, at)"
                " SELECT shopper_key, event_id, sku, category, ?, ? FROM shopper_events"
                " WHERE event_id = ? AND sku = ? AND kind = 'shown' LIMIT 1",
                (kind, self.store.clock(), event_id, action_id),
            )

        self.store.retry(write)

    def erase(self, key: str, reward_of: RewardOf | None = None) -> Erasure:
        """Delete everything kept under this shopper's key and anonymise their decisions.

        Their decisions stay in the log (the other shoppers' evaluations need them) but
        lose every link back: see `_anonymise`. What those already rolled up added to the
        console's rollups is restated as anonymised, rewards by `reward_of` (the rules in
        force; default: the default rules). Then, on SQLite, the WAL is
        checkpointed and truncated, so that no old page image keeps what was just
        erased (PostgreSQL: docs/scaling.md, "Erasure").

        Raises
        ------
        LogUnavailable
            The log stayed locked, or readers kept the WAL from being emptied; erasure
            is idempotent, so the caller retries.
        """

        rewards = RewardRules().reward_for if reward_of is None else reward_of

        def write() -> Erasure:
            # The rollups' lock: no roller adds these decisions as they were while they change.
            with exclusive(self.store.conn, ROLLUPS_LOCK) as conn:
                payloads.hold_decisions(conn, self.store.dialect)  # it may release a context
                linked = sorted(
                    {
                        row["event_id"]
                        for table in ("shopper_events", "pacing_log")
                        for row in conn.execute(
                            f"SELECT DISTINCT event_id FROM {table}"
                            " WHERE shopper_key = ? AND event_id IS NOT NULL",
                            (key,),
                        )
                    }
                )
                dialect = self.store.dialect
                renamed = restated(conn, dialect, linked, rewards, lambda: _anonymise(conn, dialect, linked))
                removed = {
                    table: conn.execute(f"DELETE FROM {table} WHERE shopper_key = ?", (key,)).rowcount
                    for table in SHOPPER_TABLES
                }
            return Erasure(removed, len(renamed))

        erasure = self.store.retry(write)
        if self.store.dialect.name == "sqlite":
            self._empty_wal()
        return erasure

    def _empty_wal(self) -> None:
        """Copy the WAL into the database and truncate it to nothing (secure_delete zeroed the rest)."""
        deadline = time.monotonic() + self._deadline

        def truncate() -> bool:
            busy = self.store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            return not busy

        # A reader on an old snapshot makes the checkpoint give up ("busy"): try again
        # until the busy timeout, as any write would.
        delay = 0.005
        while not self.store.retry(truncate):
            if time.monotonic() >= deadline:
                raise LogUnavailable("erased, but readers kept the WAL from being emptied; retry")
            time.sleep(delay)
            delay = min(delay * 2, 0.2)


SHOPPER_TABLES = ("shoppers", "shopper_events", "pacing_log")  # keyed by shopper_key: deleted


@dataclass(frozen=True, slots=True)
class Erasure:
    """What erasing one shopper did."""

    rows_removed: dict[str, int]  # per table keyed by the shopper's key
    decisions_anonymised: int  # their decisions, kept without any link to them


def _anonymise(conn: LogConnection, dialect: Dialect, event_ids: Sequence[str]) -> dict[str, str]:
    """Cut every link between these decisions and the shopper, keeping what evaluation needs.

    Per decision: a new random event id (the storefront's records, or an id it chose,
    could name the shopper) in every table that refers to it; no request hash (it hashes
    the shopper's key and search words); the context an opted-out shopper's decision has
    (the stage only). Their feedback keeps its signals and reward values, but a purchase
    value is rounded to two significant figures and any other value dropped. Actions,
    probabilities, choices and timestamps stay: they describe the policy, not the person.
    Feature importance reports over their decisions lose the search words they had.
    Return each anonymised decision's new event id by its old one.
    """
    if not event_ids:
        return {}
    referring = [
        table
        for table in _tables_with_event_id(conn, dialect)
        if table not in SHOPPER_TABLES and table != "decisions"
    ]
    # Children move first; foreign keys are checked at commit (PostgreSQL's are
    # DEFERRABLE for this since migration m015).
    if dialect.name == "sqlite":
        conn.execute("PRAGMA defer_foreign_keys = ON")
    else:
        conn.execute("SET CONSTRAINTS ALL DEFERRED")
    made_at: list[float] = []
    renamed: dict[str, str] = {}
    words: set[str] = set()
    released: list[bytes] = []
    for old in event_ids:
        row = conn.execute(f"{payloads.DECISION_SELECT} WHERE d.event_id = ?", (old,)).fetchone()
        if row is None:
            continue  # purged by retention already
        context = orjson.loads(payloads.read(row, "context"))
        made_at.append(row["created_at"])
        words |= _search_features(context)
        new = uuid.uuid4().hex
        renamed[old] = new
        for table in referring:
            conn.execute(f'UPDATE "{table}" SET event_id = ? WHERE event_id = ?', (new, old))
        anonymous = orjson.dumps(_anonymous_context(context))
        if row["context_ref"] is None:  # logged before m010: the context is inline
            conn.execute(
                "UPDATE decisions SET event_id = ?, request_sha256 = '', context = ? WHERE event_id = ?",
                (new, anonymous.decode(), old),
            )
        else:
            # Other decisions may share the context: never change it in place; point
            # this one at the anonymised copy and drop the old one if nothing else uses it.
            key = payloads.digest(anonymous)
            payloads.put(conn, key, anonymous)
            conn.execute(
                "UPDATE decisions SET event_id = ?, request_sha256 = '', context_ref = ? WHERE event_id = ?",
                (new, key, old),
            )
            released.append(row["context_ref"])
        conn.executemany(  # the feedback rows now carry the new event id
            "UPDATE feedback SET value = ? WHERE id = ?",
            [
                (_anonymous_value(f["signal"], f["value"]), f["id"])
                for f in conn.execute("SELECT id, signal, value FROM feedback WHERE event_id = ?", (new,))
            ],
        )
    payloads.release(conn, released)
    if made_at and words:
        _scrub_reports(conn, min(made_at), max(made_at), words)
    return renamed


def _tables_with_event_id(conn: LogConnection, dialect: Dialect) -> list[str]:
    """Every table with an ``event_id`` column, found in the schema (so a new one is never missed)."""
    if dialect.name == "sqlite":
        sql = (
            "SELECT m.name FROM sqlite_master m, pragma_table_info(m.name) c"
            " WHERE m.type = 'table' AND c.name = 'event_id' ORDER BY m.name"
        )
    else:
        sql = (
            "SELECT table_name FROM information_schema.columns WHERE table_schema = current_schema()"
            " AND column_name = 'event_id' ORDER BY table_name"
        )
    return [str(row[0]) for row in conn.execute(sql, ()).fetchall()]


def _search_features(context: object) -> set[str]:
    """Return the feature names a report gives the context's search words ("tokens=word")."""
    search = context.get("search") if isinstance(context, dict) else None
    tokens = search.get("tokens") if isinstance(search, dict) else None
    return {f"tokens={t}" for t in tokens if isinstance(t, str)} if isinstance(tokens, list) else set()


def _scrub_reports(conn: LogConnection, first: float, last: float, words: set[str]) -> None:
    """Take the shopper's search words out of feature importance reports over their decisions.

    A report lists features seen in at least 1% of its decisions, so over a short range
    one shopper's rare word can appear; the reports stay, without those words.
    """
    for report in conn.execute(
        "SELECT id, scores FROM feature_importances WHERE start_time <= ? AND end_time > ?", (last, first)
    ).fetchall():
        scores = orjson.loads(report["scores"])
        kept = [s for s in scores if not (s.get("namespace") == "search" and s.get("featureName") in words)]
        if len(kept) != len(scores):
            conn.execute(
                "UPDATE feature_importances SET scores = ? WHERE id = ?",
                (orjson.dumps(kept).decode(), report["id"]),
            )


def _anonymous_context(context: object) -> dict[str, Any]:
    """Return what an opted-out shopper's decision logs: the stage of the session, if known."""
    session = context.get("session") if isinstance(context, dict) else None
    stage = session.get("stage") if isinstance(session, dict) else None
    return {"session": {"stage": stage}} if isinstance(stage, str) else {}


def _anonymous_value(signal: str, value: float | None) -> float | None:
    """Keep a raw reward; round an order value to two significant figures; drop any other."""
    if value is None or signal == RAW_REWARD:
        return value
    if signal == "purchase":
        return float(f"{value:.2g}")
    return None  # no reward rule reads it
