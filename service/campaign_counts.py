"""This worker's view of the campaigns' counts: the log's, re-read at most every STALE_SECONDS.

Guaranteed shares and caps are judged on every worker's decisions, so the counts come
from the log (logs/rule_store.py), never from one worker's memory. Reading them per
request would cost a query each, so a worker keeps the last read for STALE_SECONDS of
the log's clock and adds its own decisions to it as it logs them: what it does not yet
see is what the *other* workers decided in the last STALE_SECONDS at most. A decision's
counts are written with it, in one transaction (LogStore.record_decision). A cap can
therefore be passed by at most that many impressions (their traffic in one second, for
the campaign's products), and a share is steered on counts that old.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

from logs.db import LogUnavailable
from logs.rule_store import CampaignCount, CampaignCounts
from policies.base import SlotChoice
from policies.deciding.promotions import Campaign, Tally
from service.resources import Resources

__all__ = ["STALE_SECONDS", "CampaignTallies", "tallies"]

STALE_SECONDS = 1.0
log = logging.getLogger(__name__)


class CampaignTallies:
    """Campaign -> its current period's (eligible, shown), the log's plus this worker's since."""

    def __init__(self, res: Resources):
        self.res = res
        self._lock = threading.Lock()
        self._read_at = float("-inf")
        self._counts: dict[tuple[str, float], list[int]] = {}

    def current(self, campaigns: Sequence[Campaign], now: float) -> dict[str, Tally]:
        """Each campaign's tally in the period `now` falls in."""
        keys = {c.name: c.period_start(now) for c in campaigns}
        if now - self._read_at >= STALE_SECONDS or any(k not in self._counts for k in keys.items()):
            self._read(keys, now)
        counts = self._counts
        return {name: Tally(*counts.get((name, start), (0, 0))) for name, start in keys.items()}

    @staticmethod
    def rows(campaigns: Sequence[Campaign], choices: Sequence[SlotChoice], now: float) -> list[CampaignCount]:
        """What one decision adds to the campaigns it was eligible for (logged with it)."""
        shown = {c.action_id for c in choices}
        return [(c.name, c.period_start(now), 1, int(bool(shown & c.members))) for c in campaigns]

    def counted(self, rows: Sequence[CampaignCount]) -> None:
        """Add a logged decision's rows to this worker's view until the next read."""
        with self._lock:
            for name, start, eligible, seen in rows:
                counted = self._counts.setdefault((name, start), [0, 0])
                counted[0] += eligible
                counted[1] += seen

    def _read(self, keys: dict[str, float], now: float) -> None:
        try:
            found = CampaignCounts(self.res.store).read(keys)
        except LogUnavailable:  # a busy log: steer on the last known counts, look again later
            log.warning("could not read the campaigns' counts; keeping the last known", exc_info=True)
            self._read_at = now
            return
        with self._lock:
            self._counts = {(name, keys[name]): [e, s] for name, (e, s) in found.items()}
            self._read_at = now

    def forget(self) -> None:
        """Read the log again on the next request (the rules changed)."""
        self._read_at = float("-inf")


def tallies(res: Resources) -> CampaignTallies:
    """The worker's CampaignTallies (one per Resources)."""
    found: CampaignTallies | None = getattr(res, "_campaign_tallies", None)
    if found is None:
        found = CampaignTallies(res)
        setattr(res, "_campaign_tallies", found)  # noqa: B010 -- one per Resources
    return found
