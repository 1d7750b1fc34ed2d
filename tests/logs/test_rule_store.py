"""Campaign counts come from the log: a decision carries its counts, the rollups add them up,
and a reader adds what they have not reached, exact at any moment, on both backends."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest

from logs.db import transaction
from logs.dialect import DatabaseUrl
from logs.rollup_queries import RollupReader
from logs.rollups import Rollups
from logs.rule_store import COUNTED, CampaignCount, add_counts, counted_of, counted_sql, trace_counts
from logs.store import LogStore
from policies.learning.rewards import RewardRules
from tests.logs.helpers import decision

PERIODS = {"summer": 3600.0, "winter": 3600.0, "spring": 3600.0}


def log_counted(store: LogStore, event_id: str, counts: list[CampaignCount]) -> bool:
    """Log a decision whose trace carries `counts`, as the rank path does; return whether it is new."""
    rules = {"removed": {}, "campaigns": sorted(c[0] for c in counts), COUNTED: trace_counts(counts)}
    _, new = store.record_decision(replace(decision(event_id, created_at=4000.0), rules=rules))
    return new


def roll(store: LogStore, *, max_rows: int = 50_000) -> None:
    Rollups(store).roll(
        now=5000.0, grace_seconds=0.0, reward_of=RewardRules().reward_for, max_rows=max_rows, page=1
    )


def rolled_up(store: LogStore) -> dict[tuple[str, float], tuple[int, int]]:
    sql = "SELECT campaign, period_start, eligible, shown FROM campaign_counts"
    rows = store.conn.execute(sql, ()).fetchall()
    return {(r["campaign"], float(r["period_start"])): (int(r["eligible"]), int(r["shown"])) for r in rows}


def test_counts_are_exact_before_during_and_after_the_rollups(store: LogStore) -> None:
    assert log_counted(store, "e1", [("summer", 3600.0, 1, 1), ("winter", 3600.0, 1, 0)])
    assert log_counted(store, "e2", [("summer", 3600.0, 1, 0)])
    assert log_counted(store, "e3", [("summer", 7200.0, 1, 1)])  # the next period starts from nothing
    store.record_decision(decision("plain", created_at=4000.0))  # no rules: counts for nothing
    filtered = replace(decision("filtered", created_at=4000.0), rules={"removed": {"a": "filters.max_price"}})
    store.record_decision(filtered)  # rules but no campaign eligible: counts for nothing either
    assert log_counted(store, "e4", [("winter", 3600.0, 1, 1)])
    expected = {"summer": (2, 1), "winter": (2, 1), "spring": (0, 0)}
    reader = RollupReader(store)
    assert reader.campaign_counts(PERIODS) == expected  # nothing rolled up: all from the log
    roll(store, max_rows=2)  # part of the way
    assert rolled_up(store) == {("summer", 3600.0): (2, 1), ("winter", 3600.0): (1, 0)}
    assert reader.campaign_counts(PERIODS) == expected
    roll(store)
    roll(store)  # rolling again adds nothing twice
    assert rolled_up(store)[("winter", 3600.0)] == (2, 1)
    assert reader.campaign_counts(PERIODS) == expected
    assert reader.campaign_counts({"summer": 7200.0}) == {"summer": (1, 1)}
    assert reader.campaign_counts({}) == {}


def test_a_retry_counts_nothing_and_another_worker_sees_every_count(
    store: LogStore, log_location: Path | DatabaseUrl
) -> None:
    assert log_counted(store, "e1", [("summer", 3600.0, 1, 1)])
    assert not log_counted(store, "e1", [("summer", 3600.0, 1, 1)])  # the same request again
    other = LogStore(log_location)  # another worker
    try:
        assert log_counted(other, "e2", [("summer", 3600.0, 1, 0)])
        assert RollupReader(store).campaign_counts({"summer": 3600.0}) == {"summer": (2, 1)}
        roll(other)
        assert RollupReader(store).campaign_counts({"summer": 3600.0}) == {"summer": (2, 1)}
    finally:
        other.close()


def test_counts_added_before_decisions_carried_them_still_count(store: LogStore) -> None:
    # Logs written before the trace held the counts added them to the table at once.
    with transaction(store.conn):
        add_counts(store.conn, [("summer", 3600.0, 1, 1), ("summer", 3600.0, 1, 0)])
    assert rolled_up(store) == {("summer", 3600.0): (2, 1)}
    store.record_decision(replace(decision("old", created_at=4000.0), rules={"campaigns": ["summer"]}))
    roll(store)
    assert RollupReader(store).campaign_counts({"summer": 3600.0}) == {"summer": (2, 1)}


def test_a_far_behind_rollup_is_said_not_hidden(store: LogStore, caplog: pytest.LogCaptureFixture) -> None:
    for k in range(3):
        log_counted(store, f"e{k}", [("summer", 3600.0, 1, 1)])
    with caplog.at_level(logging.WARNING):
        assert RollupReader(store, tail_limit=2).campaign_counts({"summer": 3600.0}) == {"summer": (2, 2)}
    assert "is a learner running" in caplog.text
    roll(store)
    assert RollupReader(store, tail_limit=2).campaign_counts({"summer": 3600.0}) == {"summer": (3, 3)}


def test_a_trace_reads_back_its_counts(store: LogStore) -> None:
    counts = [("summer", 3600.0, 1, 1), ("winter", 7200.0, 1, 0)]
    traces = {
        "counted": {"removed": {}, COUNTED: trace_counts(counts)},
        "none": None,
        "a sku named so": {"removed": {"counted": "filters.exclude_skus"}},  # not the trace's own key
    }
    for event_id, trace in traces.items():
        store.record_decision(replace(decision(event_id, created_at=4000.0), rules=trace))
    sql = f"SELECT event_id, {counted_sql(store.dialect, 'd.rules')} AS counted FROM decisions d"
    found = {r["event_id"]: counted_of(r["counted"]) for r in store.conn.execute(sql, ()).fetchall()}
    assert found == {"counted": counts, "none": [], "a sku named so": []}
