"""CampaignCounts: each promotion campaign's impressions per period, kept in the log (#15).

A campaign's guaranteed share and its cap are judged on what every worker served, so
the counts live in the log (table `campaign_counts`, migration m014), not in a worker's
memory: the rank path adds one decision's counts in the transaction that logs it (so a
count exists exactly when its decision does), and reads a campaign's current period as
one row (service/campaign_counts.py caches the read).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # logs.store imports count_statement from here
    from logs.store import LogStore

CampaignCount = tuple[str, float, int, int]  # (campaign, period_start, eligible, shown)

__all__ = ["CampaignCount", "CampaignCounts", "count_statement"]

# Portable SQL (SQLite 3.24+ and PostgreSQL): an upsert adding to each period's row.
_ADD = (
    "INSERT INTO campaign_counts (campaign, period_start, eligible, shown) VALUES {values}"
    " ON CONFLICT (campaign, period_start) DO UPDATE SET"
    " eligible = campaign_counts.eligible + excluded.eligible,"
    " shown = campaign_counts.shown + excluded.shown"
)
_ADD_SQL: dict[int, str] = {}


class CampaignCounts:
    """Campaigns' eligible and shown decisions per period, in the log."""

    def __init__(self, store: LogStore):
        self.store = store

    def add(self, counts: Iterable[CampaignCount]) -> None:
        """Add (campaign, period_start, eligible, shown) to each campaign's period."""
        statement = count_statement(counts)
        if statement is not None:
            sql, parameters = statement
            self.store.retry(lambda: self.store.conn.execute(sql, parameters))

    def read(self, periods: Mapping[str, float]) -> dict[str, tuple[int, int]]:
        """Return campaign -> (eligible, shown) in the period starting at `periods[campaign]`."""
        if not periods:
            return {}

        def fetch() -> dict[str, tuple[int, int]]:
            found: dict[str, tuple[int, int]] = {}
            for campaign, start in periods.items():
                row = self.store.conn.execute(
                    "SELECT eligible, shown FROM campaign_counts WHERE campaign = ? AND period_start = ?",
                    (campaign, start),
                ).fetchone()
                found[campaign] = (int(row[0]), int(row[1])) if row else (0, 0)
            return found

        return self.store.retry(fetch)


def count_statement(counts: Iterable[CampaignCount]) -> tuple[str, list[object]] | None:
    """One upsert adding `counts` to their periods' rows (None when there are none).

    One statement, so one round trip however many campaigns a decision counts for (a
    row may appear once per statement: PostgreSQL refuses to update one twice).
    """
    merged: dict[tuple[str, float], list[int]] = {}
    for campaign, start, eligible, shown in counts:
        counted = merged.setdefault((campaign, start), [0, 0])
        counted[0] += eligible
        counted[1] += shown
    if not merged:
        return None
    sql = _ADD_SQL.get(len(merged))
    if sql is None:  # one text per number of rows: built once, as SQLite's statement cache keys it
        sql = _ADD_SQL[len(merged)] = _ADD.format(values=", ".join(["(?, ?, ?, ?)"] * len(merged)))
    # In key order: two writers counting the same campaigns lock their rows in one order.
    return sql, [value for (c, start), (e, s) in sorted(merged.items()) for value in (c, start, e, s)]
