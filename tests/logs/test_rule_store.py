"""Campaign counts live in the log: every worker adds to and reads the same rows, on both backends."""

from __future__ import annotations

from pathlib import Path

import pytest

from logs.db import INTEGRITY_ERRORS, LogUnavailable
from logs.dialect import DatabaseUrl
from logs.rule_store import CampaignCounts
from logs.store import LogStore
from tests.logs.helpers import decision


def test_counts_add_up_per_campaign_and_period(store: LogStore) -> None:
    counts = CampaignCounts(store)
    counts.add([("summer", 3600.0, 1, 1), ("winter", 3600.0, 1, 0)])
    counts.add([("summer", 3600.0, 1, 0)])
    counts.add([("summer", 7200.0, 1, 1)])  # the next period starts from nothing
    counts.add([("winter", 3600.0, 1, 1), ("winter", 3600.0, 1, 0)])  # one row, added once each
    assert counts.read({"summer": 3600.0, "winter": 3600.0, "spring": 3600.0}) == {
        "summer": (2, 1),
        "winter": (3, 1),
        "spring": (0, 0),
    }
    assert counts.read({"summer": 7200.0}) == {"summer": (1, 1)}
    assert counts.read({}) == {}


def test_a_second_connection_sees_every_count(store: LogStore, log_location: Path | DatabaseUrl) -> None:
    other = LogStore(log_location)  # another worker
    try:
        CampaignCounts(store).add([("c", 0.0, 1, 1)])
        CampaignCounts(other).add([("c", 0.0, 1, 0)])
        assert CampaignCounts(store).read({"c": 0.0}) == {"c": (2, 1)}
    finally:
        other.close()


def test_a_decision_and_its_campaign_counts_are_logged_together(store: LogStore) -> None:
    counts = [("summer", 3600.0, 1, 1), ("winter", 3600.0, 1, 0)]
    first, new = store.record_decision(decision(event_id="e1"), counts)
    assert new
    again, new = store.record_decision(decision(event_id="e1"), counts)  # a retry counts nothing
    assert not new and again.event_id == first.event_id
    assert CampaignCounts(store).read({"summer": 3600.0, "winter": 3600.0}) == {
        "summer": (1, 1),
        "winter": (1, 0),
    }
    # A count that cannot be written takes its decision with it: neither exists without the other.
    broken = [(None, 3600.0, 1, 1)]  # campaign NOT NULL
    with pytest.raises((LogUnavailable, *INTEGRITY_ERRORS)):
        store.record_decision(decision(event_id="e2"), broken)  # type: ignore[arg-type]
    assert store.find_decision("e2") is None
    assert CampaignCounts(store).read({"summer": 3600.0}) == {"summer": (1, 1)}
    stored, new = store.record_decision(decision(event_id="e2"), counts)  # the retry succeeds whole
    assert new and stored.event_id == "e2"
    assert CampaignCounts(store).read({"summer": 3600.0}) == {"summer": (2, 2)}
