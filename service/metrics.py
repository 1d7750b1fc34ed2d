"""GET /metrics: Prometheus text, read from the shared log at scrape time.

gunicorn runs several worker processes, so in-process counters would each see a
part of the story. Everything here is read from the SQLite log and the model
index, which every process shares: the answer is the same whichever worker
serves the scrape.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict

from flask import Blueprint, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from logs.footprint import budget_from_mb
from policies.learning.learner import SKIPPED_OVERSIZED_KEY
from service import http_metrics
from service.loop_metrics import LoopCollector, decision_counts, feedback_counts
from service.openapi import documented
from service.personalizer import unmatched as personalizer_unmatched
from service.resources import Resources, resources

bp = Blueprint("metrics", __name__)


class LogCollector(Collector):
    """Turn the model index and the log into metric families."""

    def __init__(self, res: Resources):
        self.res = res

    def collect(self) -> Iterator[Metric]:
        conn = self.res.store.conn
        decisions = CounterMetricFamily(
            "xsell_decisions", "Decisions logged, by the model version that served", labels=["model_version"]
        )
        for version, count in decision_counts(self.res.store):  # rollups: no scan of the log
            decisions.add_metric([version], count)
        yield decisions
        feedback = CounterMetricFamily("xsell_feedback", "Feedback recorded, by signal", labels=["signal"])
        for signal, count in feedback_counts(self.res.store).items():
            feedback.add_metric([signal], count)
        yield feedback
        changes = CounterMetricFamily("xsell_model_changes", "Changes of the active model", labels=["action"])
        for action, count in conn.execute("SELECT action, count(*) FROM model_changes GROUP BY action"):
            changes.add_metric([action], count)
        yield changes
        active = self.res.registry.active()
        yield GaugeMetricFamily(
            "xsell_active_model_seq", "Sequence number of the active model", value=active.seq if active else 0
        )
        yield GaugeMetricFamily(
            "xsell_learning_frozen",
            "1 while an operator has frozen learning",
            value=int(self.res.registry.learning_frozen()),
        )
        unlearned = conn.execute("SELECT count(*) FROM decisions WHERE learned_in IS NULL").fetchone()[0]
        yield GaugeMetricFamily(
            "xsell_decisions_unlearned", "Decisions no published model has learned", value=unlearned
        )
        skipped = self.res.registry.index.control(SKIPPED_OVERSIZED_KEY)
        yield CounterMetricFamily(
            "xsell_learner_skipped_oversized",
            "Logged decisions the learner skipped because they cost more than the XSELL_MAX_* limits",
            value=int(skipped or 0),
        )
        yield from _footprint(self.res)
        yield CounterMetricFamily(
            "xsell_offers_unknown_cart_skus",
            "Cart lines naming a sku the catalog does not have (left out; offers came from the other lines)",
            value=self.res.catalog.unknown_skus_counted(),
        )
        unmatched = CounterMetricFamily(
            "xsell_personalizer_unmatched",
            "Personalizer rewards and activations for an unknown event, or a slot the event did not rank",
            labels=["call"],
        )
        for call, count in personalizer_unmatched.counts(self.res).items():
            unmatched.add_metric([call], count)
        yield unmatched
        yield from _live_settings(self.res)


def _footprint(res: Resources) -> Iterator[Metric]:
    """The log's disk use against its budget, and the days left at today's rate (logs/footprint.py)."""
    found = res.store.footprint(budget_from_mb(res.settings.log_budget_mb))
    yield GaugeMetricFamily("xsell_log_bytes", "Bytes the decision log takes", value=found.used_bytes)
    yield GaugeMetricFamily("xsell_log_budget_bytes", "Bytes the log may take", value=found.budget_bytes)
    days = found.days_until_budget
    yield GaugeMetricFamily(
        "xsell_log_days_until_budget",
        "Days until the log reaches its budget at the last day's rate (+Inf: it does not grow)",
        value=float("inf") if days is None else days,
    )


def _live_settings(res: Resources) -> Iterator[Metric]:
    """The live settings in force (what the learner and the guardrail use), with their source."""
    in_force = res.config.current()
    numbers = GaugeMetricFamily(
        "xsell_config", "Live settings in force, by setting and source", labels=["setting", "source"]
    )
    choices = GaugeMetricFamily(
        "xsell_config_choice",
        "Live settings in force that are choices: 1 for the value in force",
        labels=["setting", "value", "source"],
    )
    for name, value in asdict(in_force.live).items():
        if isinstance(value, str):
            choices.add_metric([name, value, in_force.sources[name]], 1)
        else:
            numbers.add_metric([name, in_force.sources[name]], float(value))
    yield numbers
    yield choices


@bp.get("/metrics")
@documented()
def metrics() -> Response:
    """Return Prometheus metrics about decisions, feedback and model changes."""
    registry = CollectorRegistry()
    res = resources()
    registry.register(LogCollector(res))
    # loop health and drift from the rollups; latency and errors from every worker
    registry.register(LoopCollector(res.store, grace_seconds=res.settings.learner_grace_seconds))
    for collector in http_metrics.collect():
        registry.register(collector)
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
