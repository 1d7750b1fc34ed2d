"""Campaign counts: each promotion campaign's eligible and shown decisions per period (#15).

A campaign's guaranteed share and its cap are judged on what every worker served, so
the counts come from the log, never from one worker's memory. A decision carries what
it counts for in its rules trace (``decisions.rules["counted"]``: campaign -> [period
start, shown]), written by the one statement that logs the decision: a count exists
exactly when its decision does, and the rank path pays no second statement or
transaction for it. The learner's rollups (logs/rollups.py) add those counts to
`campaign_counts` (migration m014) as they pass the decisions, behind the decisions
watermark and in the transaction that moves it; a reader adds the decisions past the
watermark in the same snapshot (logs/rollup_queries.py ``campaign_counts``), so a count
is exact at any moment, before, during and after a roll.
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson

from logs.connection import LogConnection
from logs.dialect import Dialect

__all__ = [
    "COUNTED",
    "CampaignCount",
    "add_counts",
    "counted_of",
    "counted_sql",
    "merge",
    "trace_counts",
]

CampaignCount = tuple[str, float, int, int]  # (campaign, period_start, eligible, shown)
COUNTED = "counted"  # the key of a decision's rules trace holding its campaign counts

# Portable SQL (SQLite 3.24+ and PostgreSQL): an upsert adding to a period's row.
_ADD = (
    "INSERT INTO campaign_counts (campaign, period_start, eligible, shown) VALUES (?, ?, ?, ?)"
    " ON CONFLICT (campaign, period_start) DO UPDATE SET"
    " eligible = campaign_counts.eligible + excluded.eligible,"
    " shown = campaign_counts.shown + excluded.shown"
)


def trace_counts(counts: Iterable[CampaignCount]) -> dict[str, list[float]]:
    """The rules trace's record of one decision's counts: campaign -> [period start, shown].

    A decision is eligible for a campaign once, so only the period and whether it
    showed one of the campaign's products are kept.
    """
    return {campaign: [start, shown] for campaign, start, _, shown in counts}


def add_counts(conn: LogConnection, counts: Iterable[CampaignCount]) -> None:
    """Add `counts` to their periods' rows in `campaign_counts` (inside the caller's transaction)."""
    merged = merge(counts)
    if merged:  # in key order: two writers counting the same campaigns lock their rows in one order
        conn.executemany(_ADD, [(c, start, e, s) for (c, start), (e, s) in sorted(merged.items())])


def merge(counts: Iterable[CampaignCount]) -> dict[tuple[str, float], list[int]]:
    """(campaign, period start) -> [eligible, shown], summed."""
    merged: dict[tuple[str, float], list[int]] = {}
    for campaign, start, eligible, shown in counts:
        counted = merged.setdefault((campaign, start), [0, 0])
        counted[0] += eligible
        counted[1] += shown
    return merged


def counted_sql(dialect: Dialect, column: str) -> str:
    """SQL for a logged trace's counts alone: its `counted` object as JSON text, or NULL.

    Workers read the decisions past the rollups' watermark once a second; extracting the
    few bytes they need in the database and parsing those cost a third of bringing the
    whole trace to Python and parsing that.
    """
    if dialect.name == "sqlite":
        return f"json_extract({column}, '$.{COUNTED}')"
    return f"(({column})::jsonb -> '{COUNTED}')::text"


def counted_of(counted: str | None) -> list[CampaignCount]:
    """The campaign counts in a trace's `counted` object (as `counted_sql` reads it)."""
    if not counted:
        return []
    found = orjson.loads(counted) or {}  # PostgreSQL reads a JSON null as the text 'null'
    return [(campaign, float(start), 1, int(shown)) for campaign, (start, shown) in found.items()]
