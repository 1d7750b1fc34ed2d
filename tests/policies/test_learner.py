from __future__ import annotations

import time

from logs.store import LogStore
from policies.learner import Learner, LearnerOptions
from policies.registry import ModelRegistry
from policies.rewards import RewardRules
from tests.logs.helpers import decision

ARGS = "--cb_explore_adf --epsilon 0.2 -q ::"


def _learner(store: LogStore, registry: ModelRegistry) -> Learner:
    learner = Learner(
        store, registry, RewardRules(), LearnerOptions(ARGS, snapshot_interval_seconds=0.0, grace_seconds=0.0)
    )
    learner.start()
    return learner


def _learned_in(store: LogStore) -> dict[str, str | None]:
    return dict(store.conn.execute("SELECT event_id, learned_in FROM decisions").fetchall())


def test_start_publishes_an_untrained_model_once(store: LogStore, registry: ModelRegistry) -> None:
    first = _learner(store, registry).version
    second = _learner(store, registry).version
    assert first is not None and second is not None
    assert first.version == second.version == "v1"
    assert [m.version for m in registry.index.versions()] == ["v1"]


def test_closed_events_are_learned_once_and_marked_with_their_snapshot(
    store: LogStore, registry: ModelRegistry
) -> None:
    now = time.time()
    store.record_decision(decision("silent", created_at=now - 100, window=10))
    store.record_decision(decision("clicked", created_at=now, window=600))
    store.record_feedback("clicked", "click", None)
    store.record_decision(decision("open", created_at=now, window=600))
    learner = _learner(store, registry)
    assert learner.step(now=time.time()) == 2
    assert learner.step(now=time.time()) == 0
    published = registry.active()
    assert published is not None and published.version == "v2"
    assert published.events_learned == 2
    assert _learned_in(store) == {"silent": "v2", "clicked": "v2", "open": None}


def test_a_learner_that_dies_before_its_snapshot_relearns_exactly_those_events(
    store: LogStore, registry: ModelRegistry
) -> None:
    now = time.time()
    store.record_decision(decision("a1", created_at=now - 100, window=10))
    crashed = Learner(store, registry, RewardRules(), LearnerOptions(ARGS, snapshot_interval_seconds=3600))
    crashed.start()
    assert crashed.step(now=now) == 1  # learned in memory, never published
    assert _learned_in(store) == {"a1": None}
    restarted = _learner(store, registry)
    assert restarted.step(now=now) == 1
    active = registry.active()
    assert active is not None and active.events_learned == 1


def test_silence_is_learned_with_the_default_reward(store: LogStore, registry: ModelRegistry) -> None:
    rules = RewardRules(default_reward=-0.5)
    seen: list[list[float]] = []
    learner = Learner(store, registry, rules, LearnerOptions(ARGS, snapshot_interval_seconds=0.0))
    learner.start()
    original = learner.policy.learn  # type: ignore[union-attr]
    learner.policy.learn = lambda event, rewards: (seen.append(list(rewards)), original(event, rewards))  # type: ignore[method-assign,union-attr]
    store.record_decision(decision("quiet", created_at=time.time() - 100, window=10, slots=2))
    learner.step(now=time.time())
    assert seen == [[-0.5, -0.5]]


def test_learner_continues_from_a_version_activated_elsewhere(
    store: LogStore, registry: ModelRegistry
) -> None:
    learner = _learner(store, registry)
    other = registry.publish(learner.policy, parent=None, note="activated by an operator")  # type: ignore[arg-type]
    learner.step(now=time.time())
    assert learner.version is not None and learner.version.version == other.version
