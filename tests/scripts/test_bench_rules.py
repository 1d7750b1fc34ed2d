"""The rules rows of `xsell bench serve`: ratios turn by turn, and what the table says."""

from __future__ import annotations

from scripts.devtools.bench_rules import ruled_ratios
from scripts.devtools.bench_serve import render


def test_the_rules_ratio_is_the_median_of_the_turn_by_turn_ratios() -> None:
    found = ruled_ratios({"/v1/rank": [0.95, 0.91, 0.5, 0.93], "/v1/offers": [0.88, 0.92, 0.90]})
    assert found == {
        "/v1/rank": {"throughput": 0.92, "turns": [0.95, 0.91, 0.5, 0.93]},
        "/v1/offers": {"throughput": 0.9, "turns": [0.88, 0.92, 0.9]},
    }


def test_the_table_shows_each_endpoints_median_and_every_turn() -> None:
    result = {
        "workers": 2,
        "threads": 1,
        "clients": 4,
        "seconds_per_endpoint": 20.0,
        "load_generator": "wrk, 2 threads, 4 connections",
        "endpoints": [],
        "ruled_vs_plain": ruled_ratios({"/v1/rank": [0.95, 0.91], "/v1/offers": [0.88, 0.92]}),
        "freshness_seconds": {"median": 1.5, "p95": 2.0},
        "freshness_late_click_seconds": {"median": 0.5, "p95": 0.6},
        "evaluator_events_per_second": {"IPS": 1e7},
        "log_bytes_per_decision": {
            "served": 700.0,
            "issue_19_body": 600.0,
            "issue_19_body_distinct_contexts": 760.0,
            "issue_19_body_bytes": 2747,
        },
    }
    text = render(result)
    assert "  /v1/rank: 0.93 (median; turn by turn 0.95 0.91)" in text
    assert "  /v1/offers: 0.90 (median; turn by turn 0.88 0.92)" in text
    assert "goal: at least 0.90" in text
