"""ShopperStore: preferences, pacing history and erasure, keyed by a hash of the shopper id."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from logs.db import retrying, transaction
from logs.store import LogStore
from policies.pacing import ShopperEvent

__all__ = ["Preferences", "ShopperStore"]


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
        row = retrying(
            lambda: self.store.conn.execute(
                "SELECT * FROM shoppers WHERE shopper_key = ?", (key,)
            ).fetchone(),
            deadline_seconds=self._deadline,
        )
        if row is None:
            return Preferences()
        return Preferences(tuple(orjson.loads(row["muted"])), row["frequency"], bool(row["personalised"]))

    def save_preferences(self, key: str, preferences: Preferences) -> None:
        """Store the shopper's preferences; they apply from the next request."""

        def write() -> None:
            with transaction(self.store.conn) as conn:
                conn.execute(
                    "INSERT OR REPLACE INTO shoppers"
                    " (shopper_key, muted, frequency, personalised, updated_at) VALUES (?, ?, ?, ?, ?)",
                    (
                        key,
                        orjson.dumps(sorted(set(preferences.muted))).decode(),
                        preferences.frequency,
                        int(preferences.personalised),
                        time.time(),
                    ),
                )

        retrying(write, deadline_seconds=self._deadline)

    def recent_events(self, key: str, *, since: float) -> list[ShopperEvent]:
        """Return what the shopper was shown and how they answered since `since`."""
        rows = retrying(
            lambda: self.store.conn.execute(
                "SELECT kind, at, category FROM shopper_events WHERE shopper_key = ? AND at >= ? ORDER BY at",
                (key, since),
            ).fetchall(),
            deadline_seconds=self._deadline,
        )
        return [ShopperEvent(r["kind"], r["at"], r["category"]) for r in rows]

    def record_shown(
        self, key: str, event_id: str, offers: Sequence[tuple[str, str]], *, verdict: str, reason: str
    ) -> None:
        """Record the offers (sku, category) shown for `event_id`, and the pacing verdict."""
        now = time.time()

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

        retrying(write, deadline_seconds=self._deadline)

    def record_verdict(self, key: str | None, verdict: str, reason: str) -> None:
        """Record a pacing verdict that showed nothing."""

        def write() -> None:
            with transaction(self.store.conn) as conn:
                conn.execute(
                    "INSERT INTO pacing_log (at, shopper_key, event_id, verdict, reason)"
                    " VALUES (?, ?, NULL, ?, ?)",
                    (time.time(), key, verdict, reason),
                )

        retrying(write, deadline_seconds=self._deadline)

    def record_response(self, event_id: str, action_id: str, signal: str) -> None:
        """Turn feedback on a shown offer into a pacing event (dismiss, or positive)."""
        kind = "dismiss" if signal == "dismiss" else "positive" if signal != "reward" else None
        if kind is None:
            return

        def write() -> None:
            with transaction(self.store.conn) as conn:
                shown = conn.execute(
                    "SELECT shopper_key, category FROM shopper_events"
                    " WHERE event_id = ? AND sku = ? AND kind = 'shown' LIMIT 1",
                    (event_id, action_id),
                ).fetchone()
                if shown is None:
                    return  # no shopper id was given for this decision
                conn.execute(
                    "INSERT INTO shopper_events (shopper_key, event_id, sku, category, kind, at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (shown["shopper_key"], event_id, action_id, shown["category"], kind, time.time()),
                )

        retrying(write, deadline_seconds=self._deadline)

    def erase(self, key: str) -> dict[str, int]:
        """Delete everything kept under this shopper's key; return how many rows went."""

        def write() -> dict[str, int]:
            with transaction(self.store.conn) as conn:
                return {
                    table: conn.execute(f"DELETE FROM {table} WHERE shopper_key = ?", (key,)).rowcount
                    for table in ("shoppers", "shopper_events", "pacing_log")
                }

        return retrying(write, deadline_seconds=self._deadline)
