"""This worker's view of the campaigns' counts: the log's, re-read at most every STALE_SECONDS.

Guaranteed shares and caps are judged on every worker's decisions, so the counts come
from the log (logs/rule_store.py), never from one worker's memory. Reading them per
request would cost a query each, so a worker keeps the last read for STALE_SECONDS of
the log's clock and adds its own decisions to it as it logs them: what it does not yet
see is what the *other* workers decided in the last STALE_SECONDS at most. A decision's
counts are written with it, in its rules trace (one statement). A cap can
therefore be passed by at most that many impressions (their traffic in one second, for
the campaign's products), and a share is steered on counts that old. A worker that has
not read a period's counts yet (it started, or the period did) has none to steer on:
its threads wait for that first read instead of taking zero.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from logs.db import LogUnavailable
from logs.rollup_queries import RollupReader
from logs.rule_store import CampaignCount
from policies.base import SlotChoice
from policies.deciding.promotions import Campaign, Tally
from service.resources import Resources

__all__ = ["STALE_SECONDS", "CampaignTallies", "tallies"]

STALE_SECONDS = 1.0
log = logging.getLogger(__name__)


class CampaignTallies:
    """Campaign -> its current period's (eligible, shown), the log's plus this worker's since.

    Per request this is a dict lookup: the periods are worked out again only when one
    ends, and the tallies are kept as the immutable map `current` returns (a decision
    logged here swaps in a new one).
    """

    def __init__(self, res: Resources):
        self.res = res
        self._lock = threading.Lock()
        self._reading = threading.Lock()  # held by the one thread reading the log
        self._known = False  # the tallies were read from the log for the current periods
        self._read_at = float("-inf")
        self._campaigns: Sequence[Campaign] = ()
        self._periods: dict[str, float] = {}  # campaign -> its current period's start
        self._periods_until = float("-inf")  # when the first of those periods ends
        self._tallies: dict[str, Tally] = {}

    def current(self, campaigns: Sequence[Campaign], now: float) -> dict[str, Tally]:
        """Each campaign's tally in the period `now` falls in (do not change the map)."""
        if campaigns is not self._campaigns or not (now < self._periods_until):
            self._new_periods(campaigns, now)  # the rules were read again, or a period ended
        if not self._known:  # never read for these periods: zero would pass any cap, so wait
            self._read(now, wait=True)
        elif now - self._read_at >= STALE_SECONDS:
            self._read(now, wait=False)
        return self._tallies

    @staticmethod
    def rows(campaigns: Sequence[Campaign], choices: Sequence[SlotChoice], now: float) -> list[CampaignCount]:
        """What one decision adds to the campaigns it was eligible for (logged with it)."""
        shown = {c.action_id for c in choices}
        return [(c.name, c.period_start(now), 1, int(bool(shown & c.members))) for c in campaigns]

    def counted(self, rows: Sequence[CampaignCount]) -> None:
        """Add a logged decision's rows to this worker's view until the next read."""
        with self._lock:
            tallies = dict(self._tallies)
            for name, start, eligible, seen in rows:
                had = tallies.get(name)
                if had is not None and self._periods.get(name) == start:
                    tallies[name] = Tally(had.eligible + eligible, had.shown + seen)
            self._tallies = tallies

    def _new_periods(self, campaigns: Sequence[Campaign], now: float) -> None:
        periods = {c.name: c.period_start(now) for c in campaigns}
        with self._lock:
            self._campaigns = campaigns
            self._periods_until = min(
                (periods[c.name] + c.period_seconds for c in campaigns), default=float("inf")
            )
            if periods != self._periods:  # a new period, or another campaign: read the log at once
                kept = self._periods
                self._tallies = {
                    name: self._tallies.get(name, Tally()) if kept.get(name) == start else Tally()
                    for name, start in periods.items()
                }
                self._periods = periods
                self._known = False
                self._read_at = float("-inf")

    def _read(self, now: float, *, wait: bool) -> None:
        """Read the log's counts; while one thread reads, the others go on with the counts
        they have, or (`wait`: they have none for these periods) wait for that read."""
        if not self._reading.acquire(blocking=wait):
            return
        try:
            with self._lock:
                if self._known and now - self._read_at < STALE_SECONDS:
                    return  # read while this thread waited
                self._read_at = now
                periods = self._periods
            try:
                found = RollupReader(self.res.store).campaign_counts(periods)
            except LogUnavailable:  # a busy log: steer on the last known counts, look again later
                log.warning("could not read the campaigns' counts; keeping the last known", exc_info=True)
                return  # a thread still waiting reads again (bounded by the log's busy timeout)
            with self._lock:
                if periods is self._periods:  # else another thread moved to new periods meanwhile
                    self._tallies = {name: Tally(*found[name]) for name in periods}
                    self._known = True
        finally:
            self._reading.release()

    def forget(self) -> None:
        """Read the log again on the next request (the rules changed)."""
        self._read_at = float("-inf")
        self._periods_until = float("-inf")


def tallies(res: Resources) -> CampaignTallies:
    """The worker's CampaignTallies (one per Resources)."""
    found: CampaignTallies | None = getattr(res, "_campaign_tallies", None)
    if found is None:
        found = CampaignTallies(res)
        setattr(res, "_campaign_tallies", found)  # noqa: B010 -- one per Resources
    return found
