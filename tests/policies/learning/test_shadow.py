"""A shadow policy scores live decisions, learns from them, and never serves."""

from __future__ import annotations

import time

import numpy as np

from logs.records import DecisionRecord
from logs.store import LogStore
from policies.learning.learner import Learner, LearnerOptions
from policies.learning.registry import ModelRegistry
from policies.learning.rewards import RewardRules
from policies.learning.shadow import Shadow, auto_promote, live_report
from scripts.devtools.synthetic import SyntheticProblem, uniform_log

ACTIVE = "--cb_explore_adf --epsilon 1.0"  # explores always: as good as uniform
SHADOW = "--cb_explore_adf --squarecb -q ::"


def log_uniform_decisions(store: LogStore, n: int, seed: int = 0) -> None:
    """Write `n` closed, uniformly logged decisions with their clicks into the store."""
    start = time.time() - 3600
    for item in uniform_log(SyntheticProblem(seed=seed), n, seed=seed):
        event = item.event
        record = DecisionRecord(
            event_id=event.event_id,
            created_at=start + event.created_at - 1_000_000,
            closes_at=time.time() + 3600,
            model_version="v1",
            request_sha256=event.event_id,
            context=event.context,
            actions=event.actions,
            excluded=event.excluded,
            probabilities=event.probabilities,
            choices=event.choices,
            slots=1,
        )
        store.record_decision(record)
        if item.rewards[0] > 0:
            store.record_feedback(event.event_id, "click", None)
    with store.conn:
        store.conn.execute("UPDATE decisions SET closes_at = min(closes_at, created_at + 1)")


def shadow_learner(store: LogStore, registry: ModelRegistry) -> Learner:
    registry.ensure_initial(ACTIVE)
    learner = Learner(
        store,
        registry,
        RewardRules(),
        LearnerOptions(ACTIVE, snapshot_interval_seconds=0, grace_seconds=0, batch_size=200),
        shadow=Shadow(registry, store, SHADOW),
    )
    learner.start()
    return learner


def test_the_shadow_scores_every_learned_decision_and_publishes_candidates_only(
    store: LogStore, registry: ModelRegistry
) -> None:
    log_uniform_decisions(store, 600)
    learner = shadow_learner(store, registry)
    assert learner.step() == 600
    active = registry.active()
    assert active.vw_args == ACTIVE and active.state == "active"
    candidates = [m for m in registry.index.versions() if m.state == "candidate"]
    assert candidates and all(m.vw_args == SHADOW for m in candidates)
    scored = store.shadow_scored(SHADOW)
    assert len(scored) == 600
    assert all(0.0 <= p[0] <= 1.0 for _, p, _ in scored)
    report = live_report(store, registry, SHADOW, RewardRules())
    assert report.n == 600 and report.version == candidates[0].version
    assert 0.0 <= report.agreement <= 1.0
    assert {e.estimator for e in report.estimates} == {"IPS", "SNIPS"}


def test_a_restarted_shadow_continues_from_its_latest_candidate(
    store: LogStore, registry: ModelRegistry
) -> None:
    log_uniform_decisions(store, 300)
    shadow_learner(store, registry).step()
    latest = [m for m in registry.index.versions() if m.state == "candidate"][0]
    assert Shadow(registry, store, SHADOW).version == latest


def test_auto_promotion_waits_for_evidence_then_promotes_a_clearly_better_shadow(
    store: LogStore, registry: ModelRegistry
) -> None:
    log_uniform_decisions(store, 3000, seed=3)
    learner = shadow_learner(store, registry)
    learner.step()
    report = live_report(store, registry, SHADOW, RewardRules())
    assert auto_promote(registry, report, min_events=10_000) is None  # not enough decisions yet
    snips = next(e for e in report.estimates if e.estimator == "SNIPS")
    assert snips.low > report.active.value  # squarecb learned; uniform-like serving did not
    change = auto_promote(registry, report, min_events=1000)
    assert change is not None and change.actor == "auto-promote"
    assert registry.active().version == report.version


def test_a_shadow_no_better_than_the_active_policy_is_not_promoted(
    store: LogStore, registry: ModelRegistry
) -> None:
    log_uniform_decisions(store, 1500, seed=4)
    registry.ensure_initial(ACTIVE)
    learner = Learner(
        store,
        registry,
        RewardRules(),
        LearnerOptions(ACTIVE, snapshot_interval_seconds=0, grace_seconds=0),
        shadow=Shadow(registry, store, "--cb_explore_adf --epsilon 1.0 -q ::"),  # uniform too
    )
    learner.start()
    learner.step()
    report = live_report(store, registry, "--cb_explore_adf --epsilon 1.0 -q ::", RewardRules())
    assert np.isclose(report.estimates[0].value, report.active.value)  # same policy: IPS equals the mean
    assert auto_promote(registry, report, min_events=1000) is None
