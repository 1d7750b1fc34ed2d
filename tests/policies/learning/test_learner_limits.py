"""The learner skips and counts a logged event costlier than the limits, and goes on."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from logs.store import LogStore
from policies.deciding.features import FeatureLimits, TooCostly, example_cost
from policies.learning.learner import SKIPPED_OVERSIZED_KEY, Learner, LearnerOptions
from policies.learning.registry import ModelRegistry
from policies.learning.rewards import RewardRules
from tests.logs.helpers import decision

ARGS = "--cb_explore_adf --epsilon 0.2 -q ::"
# 5,000 context features: over the default 1,024, as a log from before the limits could hold.
HUGE_CONTEXT = {f"n{k}": {f"f{i}": f"v{i}" for i in range(100)} for k in range(50)}


def _learned_in(store: LogStore) -> dict[str, str | None]:
    return dict(store.conn.execute("SELECT event_id, learned_in FROM decisions").fetchall())


def test_an_oversized_logged_event_is_skipped_counted_and_learning_goes_on(
    store: LogStore, registry: ModelRegistry
) -> None:
    now = time.time()
    store.record_decision(decision("before", created_at=now - 300, window=10))
    store.record_decision(replace(decision("huge", created_at=now - 200, window=10), context=HUGE_CONTEXT))
    store.record_decision(decision("after", created_at=now - 100, window=10))
    learner = Learner(
        store, registry, RewardRules(), LearnerOptions(ARGS, snapshot_interval_seconds=0.0, grace_seconds=0.0)
    )
    learner.start()
    learner.step(now=now)
    assert learner.policy is not None and learner.policy.events_learned == 2  # before and after
    assert registry.index.control(SKIPPED_OVERSIZED_KEY) == "1"
    # settled with the snapshot, so a restarted learner does not read (or count) it again
    assert _learned_in(store) == {"before": "v2", "huge": "v2", "after": "v2"}
    restarted = Learner(store, registry, RewardRules(), LearnerOptions(ARGS, grace_seconds=0.0))
    restarted.start()
    assert restarted.step(now=now) == 0
    assert registry.index.control(SKIPPED_OVERSIZED_KEY) == "1"


def test_the_count_adds_up_across_learners(store: LogStore, registry: ModelRegistry) -> None:
    now = time.time()
    options = LearnerOptions(
        ARGS, snapshot_interval_seconds=0.0, grace_seconds=0.0, limits=FeatureLimits(max_context_features=1)
    )
    for k in range(2):
        store.record_decision(decision(f"e{k}", created_at=now - 100 + k, window=10))  # 1 context feature
        store.record_decision(
            replace(decision(f"big{k}", created_at=now - 100 + k, window=10), context={"u": {"a": 1, "b": 2}})
        )
        learner = Learner(store, registry, RewardRules(), options)
        learner.start()
        learner.step(now=now)
    assert registry.index.control(SKIPPED_OVERSIZED_KEY) == "2"
    assert set(_learned_in(store).values()) != {None}


def test_cost_counts_list_items_and_squares_lines_under_wildcard_interactions() -> None:
    event = decision()
    cost = example_cost(event.context, event.actions, ARGS)
    # per line: 1 context + the action's own (1, 0, 0) + its id
    assert cost.context_features == 1
    assert cost.action_features == (1, 0, 0)
    assert cost.features_x_actions == 3 + 2 + 2
    assert cost.interaction_pairs == 3 * 3 + 2 * 2 + 2 * 2
    tagged = example_cost(
        {"u": {"tags": ["a", "b", "c"], "off": False}}, event.actions[:1], "--cb_explore_adf"
    )
    assert tagged.context_features == 3 and tagged.interaction_pairs == 0


def test_cost_follows_the_interactions_the_arguments_name() -> None:
    context = {"user": {"a": 1, "b": 2}, "item": {"c": 3}}
    actions = [decision().actions[1]]  # no features of its own: only its id, in "_action"
    assert example_cost(context, actions, "--cb_explore_adf -q ui").interaction_pairs == 2 * 1
    assert example_cost(context, actions, "--cb_explore_adf -qui").interaction_pairs == 2 * 1
    assert example_cost(context, actions, "--cb_explore_adf --quadratic=uu").interaction_pairs == 2 * 2
    # arguments VW may not get are priced as the default -q :: (no policy runs on them)
    assert example_cost(context, actions, "--cb_explore_adf -f /tmp/m").interaction_pairs == 4**2
    assert example_cost(context, actions, "--cb_explore_adf --cubic :::").interaction_pairs == 4**3
    assert example_cost(context, actions, "--cb_explore_adf -q :: --bag 5").interaction_pairs == 5 * 4**2


def test_limits_name_the_first_one_exceeded_and_where() -> None:
    limits = FeatureLimits(max_context_features=10, max_action_features=2)
    event = decision()
    many = replace(event.actions[0], features={"offer": {f"f{i}": i for i in range(3)}})
    with pytest.raises(TooCostly) as caught:
        limits.check(example_cost(event.context, (event.actions[1], many), ARGS), actions_field="actions")
    error = caught.value
    assert (error.limit, error.field, error.value, error.maximum) == (
        "max_action_features",
        "actions[1].features",
        3,
        2,
    )
