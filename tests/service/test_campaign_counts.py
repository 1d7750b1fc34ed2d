"""A worker's view of the campaigns' counts: its own decisions at once, the others' within
STALE_SECONDS, a new period from nothing, and never a map changed under a request."""

from __future__ import annotations

import threading
from dataclasses import replace
from types import SimpleNamespace
from typing import cast

import pytest

from logs.rollup_queries import RollupReader
from logs.rule_store import COUNTED, CampaignCount, trace_counts
from logs.store import LogStore
from policies.deciding.promotions import Campaign, Tally
from service.campaign_counts import STALE_SECONDS, CampaignTallies
from service.resources import Resources
from tests.logs.helpers import decision

HOUR = 3600.0
START = 1_800_000_000.0  # a whole hour


def campaigns() -> tuple[Campaign, ...]:
    return (Campaign("summer", ("a",), min_share=0.2, period_seconds=HOUR),)


def log_other_worker(store: LogStore, event_id: str, counts: list[CampaignCount]) -> None:
    rules = {"campaigns": sorted(c[0] for c in counts), COUNTED: trace_counts(counts)}
    store.record_decision(replace(decision(event_id, created_at=START), rules=rules))


def test_own_decisions_count_at_once_and_the_others_within_the_staleness_bound(store: LogStore) -> None:
    tallies = CampaignTallies(cast(Resources, SimpleNamespace(store=store)))
    rules = campaigns()
    first = tallies.current(rules, START)
    assert first == {"summer": Tally(0, 0)}
    tallies.counted([("summer", START, 1, 1)])  # this worker logged one
    assert tallies.current(rules, START + 0.1) == {"summer": Tally(1, 1)}
    assert first == {"summer": Tally(0, 0)}  # a map handed out is never changed
    log_other_worker(store, "theirs", [("summer", START, 1, 0)])
    log_other_worker(store, "mine", [("summer", START, 1, 1)])  # the one counted above, now in the log
    assert tallies.current(rules, START + 0.2) == {"summer": Tally(1, 1)}  # not read again yet
    assert tallies.current(rules, START + STALE_SECONDS) == {"summer": Tally(2, 1)}  # the log's, whole


def test_a_new_period_starts_from_nothing_and_equal_rules_keep_the_counts(store: LogStore) -> None:
    tallies = CampaignTallies(cast(Resources, SimpleNamespace(store=store)))
    log_other_worker(store, "e1", [("summer", START, 1, 1)])
    assert tallies.current(campaigns(), START + 10) == {"summer": Tally(1, 1)}
    tallies.counted([("summer", START, 1, 0)])
    # The rules read again (an equal, new object): no reset, no read before the bound.
    assert tallies.current(campaigns(), START + 10.5) == {"summer": Tally(2, 1)}
    next_hour = START + HOUR
    assert tallies.current(campaigns(), next_hour) == {"summer": Tally(0, 0)}
    tallies.counted([("summer", START, 1, 1)])  # a late count for the period that ended
    assert tallies.current(campaigns(), next_hour + 0.1) == {"summer": Tally(0, 0)}


def test_a_thread_with_no_counts_yet_waits_for_the_read_under_way(
    store: LogStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another thread is reading the log's counts (held here); a request arriving meanwhile
    # must not take zero (it would pass a cap the log has reached), but wait for that read.
    log_other_worker(store, "theirs", [("summer", START, 1, 1)])
    entered, release = threading.Event(), threading.Event()
    original = RollupReader.campaign_counts

    def held(self: RollupReader, periods: dict[str, float]) -> dict[str, tuple[int, int]]:
        entered.set()
        assert release.wait(30)
        return original(self, periods)

    monkeypatch.setattr(RollupReader, "campaign_counts", held)
    tallies = CampaignTallies(cast(Resources, SimpleNamespace(store=store)))
    rules = campaigns()
    seen: dict[str, dict[str, Tally]] = {}
    reader = threading.Thread(target=lambda: seen.setdefault("reader", tallies.current(rules, START)))
    reader.start()
    assert entered.wait(30)
    other = threading.Thread(target=lambda: seen.setdefault("other", tallies.current(rules, START)))
    other.start()
    other.join(0.5)
    assert "other" not in seen  # still waiting for the read (the old code answered zero here)
    release.set()
    reader.join(30)
    other.join(30)
    assert seen == {"reader": {"summer": Tally(1, 1)}, "other": {"summer": Tally(1, 1)}}
