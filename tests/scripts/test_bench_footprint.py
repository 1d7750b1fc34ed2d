"""`xsell bench` measures the log's bytes per decision on the body issue #19 measured."""

from __future__ import annotations

import orjson

from scripts.devtools.bench_footprint import FOOTPRINT_BODY, bytes_per_decision


def test_the_issue_body_is_what_it_says() -> None:
    assert 2500 < len(orjson.dumps(FOOTPRINT_BODY)) < 3000
    assert sum(len(features) for features in FOOTPRINT_BODY["context"].values()) == 20
    assert [len(a["features"]["offer"]) for a in FOOTPRINT_BODY["actions"]] == [10] * 10


def test_a_decision_on_the_issue_body_takes_at_most_a_kilobyte() -> None:
    same = bytes_per_decision(1500)
    distinct = bytes_per_decision(1500, distinct_contexts=True)
    assert 0 < same["bytes_per_decision"] <= 1024
    assert 0 < distinct["bytes_per_decision"] <= 1024
