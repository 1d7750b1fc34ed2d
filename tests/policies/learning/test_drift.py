"""Drift alarms: a simulated shift trips them, steady traffic does not (time driven by the test)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from logs.records import DecisionRecord
from logs.rollup_queries import RollupReader
from logs.store import LogStore
from policies.base import Action, SlotChoice
from policies.learning.drift import DriftOptions, RewardTotals, check_reward, psi, welch
from policies.learning.rewards import RewardRules
from service.loop_chores import HealthChores

T0 = 1_800_000_000.0 - 1_800_000_000.0 % 3600
WINDOW = 60.0
PER_MINUTE = 20
OPTIONS = DriftOptions(
    recent_minutes=15, reference_minutes=60, min_decisions=200, min_ended=200
)  # 20 a minute


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Traffic:
    """Shoppers arriving at a steady rate; the test says on which devices and how often they click."""

    def __init__(self, tmp_path: Path) -> None:
        self.clock = Clock(T0)
        self.store = LogStore(tmp_path / "log.db", clock=self.clock)
        self.store.migrate()
        self.rng = np.random.default_rng(7)
        self.count = 0
        self.chores = HealthChores(
            self.store,
            rules=RewardRules,
            window_seconds=lambda: WINDOW,
            grace_seconds=0.0,
            drift_options=OPTIONS,
        )

    def minutes(self, n: int, *, mobile_share: float, click_rate: float) -> None:
        for _ in range(n):
            start = self.clock.now
            for k in range(PER_MINUTE):
                at = start + k * 60.0 / PER_MINUTE
                self.clock.now = at
                event_id = f"e{self.count}"
                self.count += 1
                device = "mobile" if self.rng.random() < mobile_share else "desktop"
                self.store.record_decision(
                    DecisionRecord(
                        event_id=event_id,
                        created_at=at,
                        closes_at=at + WINDOW,
                        model_version="v1",
                        request_sha256=event_id,
                        context={
                            "shopper": {"device": device},
                            "cart": {"value": float(self.rng.integers(20, 60))},
                        },
                        actions=(Action("a"), Action("b")),
                        excluded=frozenset(),
                        probabilities=(0.5, 0.5),
                        choices=(SlotChoice(0, "a", 0.5),),
                        slots=1,
                    )
                )
                if self.rng.random() < click_rate:
                    self.store.record_feedback(event_id, "click", None)
            self.clock.now = start + 60.0
            self.chores.roll()

    def check(self) -> dict[str, str]:
        return {r.subject: r.status for r in self.chores.check_drift()}


@pytest.fixture
def traffic(tmp_path: Path) -> Traffic:
    found = Traffic(tmp_path)
    yield found
    found.store.close()


def test_steady_traffic_raises_no_alarm(traffic: Traffic, caplog: pytest.LogCaptureFixture) -> None:
    traffic.minutes(80, mobile_share=0.6, click_rate=0.3)
    with caplog.at_level(logging.WARNING, logger="policies.learning.drift"):
        statuses = traffic.check()
    assert statuses, "no drift check ran"
    assert statuses == {"shopper": "ok", "cart": "ok", "reward": "ok"}
    assert not [r for r in caplog.records if "drift" in r.getMessage()]


def test_a_shift_in_devices_and_clicks_trips_the_alarms_and_they_clear(
    traffic: Traffic, caplog: pytest.LogCaptureFixture
) -> None:
    traffic.minutes(62, mobile_share=0.6, click_rate=0.3)
    traffic.minutes(17, mobile_share=0.05, click_rate=0.05)  # the shop's traffic changes
    with caplog.at_level(logging.INFO, logger="policies.learning.drift"):
        statuses = traffic.check()
    assert statuses["shopper"] == "alarm"
    assert statuses["cart"] == "ok"  # cart values did not move
    assert statuses["reward"] == "alarm"
    messages = [r.getMessage() for r in caplog.records]
    assert any("drift ALARM on features shopper" in m for m in messages), messages
    assert any("drift ALARM on reward" in m for m in messages), messages
    latest = {row["subject"]: row for row in RollupReader(traffic.store).latest_drift()}
    assert latest["shopper"]["status"] == "alarm" and latest["shopper"]["score"] > OPTIONS.psi_alarm
    assert "device" in latest["shopper"]["detail"]  # which feature moved
    # the new traffic becomes the reference: the alarms clear
    traffic.minutes(80, mobile_share=0.05, click_rate=0.05)
    with caplog.at_level(logging.INFO, logger="policies.learning.drift"):
        assert traffic.check() == {"shopper": "ok", "cart": "ok", "reward": "ok"}
    assert any("drift cleared on features shopper" in r.getMessage() for r in caplog.records)


def test_too_few_decisions_is_insufficient_not_a_verdict(traffic: Traffic) -> None:
    traffic.minutes(5, mobile_share=0.6, click_rate=0.3)
    assert set(traffic.check().values()) == {"insufficient"}


def test_psi_thresholds_and_welch() -> None:
    assert psi({0: 1, 1: 1}, {0: 1, 1: 1}) == 0.0
    assert 0.1 < psi({0: 62, 1: 38}, {0: 45, 1: 55}) < 0.2  # a moderate shift: warn
    z, p = welch(RewardTotals(300, 30.0, 30.0), RewardTotals(1200, 360.0, 360.0))
    assert z < 0 and p < 0.01
    verdict = check_reward(RewardTotals(300, 90.0, 90.0), RewardTotals(1200, 360.0, 360.0), OPTIONS)
    assert verdict.status == "ok" and verdict.p_value == pytest.approx(1.0)
