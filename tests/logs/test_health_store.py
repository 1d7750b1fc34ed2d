"""HealthStore on SQLite and PostgreSQL (tests/logs/conftest.py): drift rows, hourly samples, estimates."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from logs.health_store import HealthStore
from logs.store import LogStore
from tests.logs.helpers import decision

HOUR = 500_000


@dataclass(frozen=True)
class Drift:
    kind: str = "features"
    subject: str = "shopper"
    score: float | None = 0.1
    p_value: float | None = None
    status: str = "ok"
    recent_n: int = 10
    reference_n: int = 20
    detail: dict[str, Any] = field(default_factory=dict)


def test_drift_checks_keep_only_the_newest(store: LogStore) -> None:
    health = HealthStore(store, keep_drift_checks=3)
    for k in range(5):
        health.record_drift(float(k), [Drift(score=float(k))], {"features": 60})
    rows = store.conn.execute("SELECT at, score FROM drift_checks ORDER BY at").fetchall()
    assert [tuple(r) for r in rows] == [(2.0, 2.0), (3.0, 3.0), (4.0, 4.0)]


def test_an_hour_is_sampled_evenly_and_estimated_once(store: LogStore) -> None:
    health = HealthStore(store)
    start = HOUR * 3600.0
    for k in range(10):
        store.record_decision(decision(f"e{k}", created_at=start + k * 60, window=60.0, fingerprint=f"r{k}"))
    store.conn.execute(
        "INSERT INTO rollup_decisions (minute, model_version, decisions) VALUES (?, 'v1', 10)", (HOUR * 60,)
    )
    end = start + 3600.0
    assert health.hours_to_estimate(first_hour=HOUR - 1, ended_before=end) == [HOUR]
    events, held = health.sample_events(HOUR, closed_before=end, size=5)
    assert held == 10 and [e.event_id for e in events] == ["e0", "e2", "e4", "e6", "e8"]
    health.record_estimates(HOUR, [("uniform", "ips", 0.1, 0.0, 0.2, 5)], decisions=10, at=end)
    health.record_estimates(HOUR, [("uniform", "snips", 0.3, 0.2, 0.4, 5)], decisions=10, at=end + 1)
    rows = store.conn.execute("SELECT policy, estimator, value FROM learning_estimates").fetchall()
    assert [tuple(r) for r in rows] == [("uniform", "snips", 0.3)]
    assert health.hours_to_estimate(first_hour=HOUR - 1, ended_before=end) == []
