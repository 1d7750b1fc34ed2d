"""The loop's health in /metrics: the console's figures as gauges, drift scores and alarms.

Read from the rollups (service/loop_health.py), so a scrape costs the same with any
size of log and agrees with the console. Request latency and error counts come from
the web workers' own counters (service/http_metrics.py).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from logs.rollup_queries import RollupReader
from logs.store import LogStore
from service import http_metrics, loop_health

__all__ = ["LoopCollector", "decision_counts", "feedback_counts"]

ALARM_LEVEL = {"ok": 0, "insufficient": 0, "warn": 1, "alarm": 2}
WINDOW_MINUTES = 60
GAUGES = {  # figure -> (metric name, help)
    "decisions_per_minute": ("xsell_decisions_per_minute", "Decisions per minute over the last hour"),
    "feedback_per_minute": ("xsell_feedback_per_minute", "Feedback posts per minute over the last hour"),
    "feedback_share": (
        "xsell_feedback_share",
        "Share of the last hour's decisions whose reward window ended that got on-time feedback",
    ),
    "late_feedback": ("xsell_late_feedback_window", "Feedback posts after the reward window, last hour"),
    "exploration_share": (
        "xsell_exploration_share",
        "Share of the last hour's decisions whose first offer was not the most likely one",
    ),
    "learner_lag_decisions": (
        "xsell_learner_lag_decisions",
        "Decisions due for learning that no published model has learned",
    ),
    "seconds_since_snapshot": (
        "xsell_seconds_since_snapshot",
        "Seconds since the newest model was published",
    ),
}


class LoopCollector(Collector):
    """Gauges from the loop health figures, the reward delay histogram, drift and HTTP figures."""

    def __init__(self, store: LogStore, *, grace_seconds: float):
        self.store = store
        self.grace_seconds = grace_seconds

    def collect(self) -> Iterator[Metric]:
        health = loop_health.loop_health(
            self.store, window_minutes=WINDOW_MINUTES, grace_seconds=self.grace_seconds
        )
        for key, (name, text) in GAUGES.items():
            figure = health.figures[key]
            value = math.nan if figure.value is None else float(figure.value)
            yield GaugeMetricFamily(name, f"{text} ({figure.unit})", value=value)
        ended = health.figures["feedback_share"]
        yield GaugeMetricFamily(
            "xsell_rollup_age_seconds",
            "How far the reward figures (ended windows) trail the clock; large when the learner is down",
            value=ended.age_seconds,
        )
        delays = GaugeMetricFamily(
            "xsell_reward_delay_seconds_window",
            "Feedback posts of the last hour by delay after the decision, cumulative (le: seconds)",
            labels=["le"],
        )
        running = 0.0
        for row in health.delay_histogram:
            running += row["count"]
            delays.add_metric(["+Inf" if math.isinf(row["le"]) else f"{row['le']:g}"], running)
        yield delays
        yield from _drift(RollupReader(self.store))
        unmatched = CounterMetricFamily(
            "xsell_feedback_unmatched",
            "Feedback posts naming an unknown event or offer, since the service started",
            labels=["code"],
        )
        # Summed over the routes that take feedback (feedback, activate, both APIs): one
        # sample per code, never one per route under the same labels.
        by_code = dict.fromkeys(("unknown_event", "unknown_action"), 0.0)
        for (route, _status, code), count in http_metrics.error_counts().items():
            if code in by_code and "events" in route:
                by_code[code] += count
        for code, count in by_code.items():
            unmatched.add_metric([code], count)
        yield unmatched


def _drift(reader: RollupReader) -> Iterator[Metric]:
    psi = GaugeMetricFamily(
        "xsell_drift_psi",
        "Population stability index of each context namespace, recent vs reference window",
        labels=["namespace"],
    )
    alarm = GaugeMetricFamily(
        "xsell_drift_alarm",
        "Drift status: 0 ok or too few decisions, 1 warn, 2 alarm",
        labels=["kind", "subject"],
    )
    reward = GaugeMetricFamily(
        "xsell_drift_reward_z", "Welch z of the recent vs reference mean reward (ended windows)"
    )
    p_value = GaugeMetricFamily("xsell_drift_reward_p_value", "Two-sided p-value of the reward drift test")
    worst = 0
    for row in reader.latest_drift():
        level = ALARM_LEVEL.get(row["status"], 0)
        worst = max(worst, level)
        alarm.add_metric([row["kind"], row["subject"]], level)
        if row["score"] is None:
            continue
        if row["kind"] == "features":
            psi.add_metric([row["subject"]], row["score"])
        else:
            reward.add_metric([], row["score"])
            p_value.add_metric([], row["p_value"])
    yield from (psi, alarm, reward, p_value)
    yield GaugeMetricFamily(
        "xsell_drift_alarm_any", "Highest drift status now (0, 1 warn, 2 alarm)", value=worst
    )


def decision_counts(store: LogStore, limit: int = 50) -> list[tuple[str, int]]:
    """Decisions per model version, all time (rollups plus the rows they have not reached)."""
    reader = RollupReader(store)
    marks = reader.watermarks()
    counts: dict[str, int] = defaultdict(int)
    for row in reader.decisions_total(limit):
        counts[row["model_version"]] += int(row["decisions"])
    for row in reader.decisions_tail(marks).rows:
        counts[row["model_version"]] += 1
    return sorted(counts.items(), key=lambda item: -item[1])[:limit]


def feedback_counts(store: LogStore) -> dict[str, int]:
    """Feedback posts per signal, all time (rollups plus the rows they have not reached)."""
    reader = RollupReader(store)
    marks = reader.watermarks()
    counts: dict[str, int] = defaultdict(int)
    for row in reader.feedback_total():
        counts[row["signal"]] += int(row["count"])
    for _minute, signal, _on_time, _bucket in reader.feedback_tail(marks)[0]:
        counts[signal] += 1
    return dict(counts)
