from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace

from logs.store import LogStore
from policies.base import Feedback
from policies.learning.learner import Learner, LearnerOptions
from policies.learning.registry import ModelRegistry
from policies.learning.rewards import RewardRules
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
    store.record_decision(decision("not yet", created_at=now, window=600, learn_in=60))
    learner = _learner(store, registry)
    assert learner.step(now=time.time()) == 2
    assert learner.step(now=time.time()) == 0
    published = registry.active()
    assert published is not None and published.version == "v2"
    assert published.events_learned == 2
    assert _learned_in(store) == {"silent": "v2", "clicked": "v2", "not yet": None}


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


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _log_clock(store: LogStore) -> FakeClock:
    """Put the log on a clock the test moves."""
    store.clock = clock = FakeClock(1_000.0)
    return clock


def _spied(store: LogStore, registry: ModelRegistry, clock: FakeClock) -> tuple[Learner, list[list[float]]]:
    """A real learner (real VW) whose every learning step is also written down."""
    learner = Learner(
        store,
        registry,
        RewardRules(),
        LearnerOptions(ARGS, snapshot_interval_seconds=0.0, grace_seconds=0.0),
        clock=clock,
    )
    learner.start()
    seen: list[list[float]] = []
    original = learner.policy.learn  # type: ignore[union-attr]
    learner.policy.learn = lambda event, rewards: (seen.append(list(rewards)), original(event, rewards))  # type: ignore[method-assign,union-attr]
    return learner, seen


def test_a_purchase_minutes_after_a_click_is_learned_as_the_purchase(
    store: LogStore, registry: ModelRegistry
) -> None:
    clock = _log_clock(store)
    learner, seen = _spied(store, registry, clock)
    store.record_decision(decision("e1", created_at=1_000.0, window=600, learn_in=1.0))
    clock.now = 1_000.5
    store.record_feedback("e1", "click", None)
    clock.now = 1_001.0
    assert learner.step() == 1  # learned at its first horizon, fresh, with the click
    clock.now = 1_000.0 + 20 * 60 - 700  # 8 minutes later, inside the 10-minute window
    store.record_feedback("e1", "purchase", 200.0)
    assert learner.step() == 1  # the correction
    purchase = RewardRules().reward_for((_fb("purchase", 200.0),), "a")
    assert purchase == 2.0  # 1 + 0.005 x 200
    # The click was learned, then the correction: together they average the purchase.
    assert seen == [[1.0], [3.0]] and (seen[0][0] + seen[1][0]) / 2 == purchase
    assert learner.step() == 0  # nothing is learned twice
    clock.now = 1_000.0 + 601  # after the window: recorded, never learned
    assert not store.record_feedback("e1", "add_to_cart", None).on_time
    assert learner.step() == 0
    restarted, seen_after_restart = _spied(store, registry, clock)
    assert restarted.step() == 0 and seen_after_restart == []
    assert len(seen) == 2


def test_a_later_signal_that_changes_no_reward_is_not_learned_again(
    store: LogStore, registry: ModelRegistry
) -> None:
    clock = _log_clock(store)
    learner, seen = _spied(store, registry, clock)
    store.record_decision(decision("e1", created_at=1_000.0, window=600, learn_in=1.0))
    store.record_feedback("e1", "click", None)
    clock.now = 1_002.0
    learner.step()
    clock.now = 1_030.0
    store.record_feedback("e1", "add_to_cart", None)  # worth what the click was worth
    assert learner.step() == 0
    assert seen == [[1.0]]
    unlearned = store.conn.execute("SELECT COUNT(*) FROM feedback WHERE learned_in IS NULL").fetchone()[0]
    assert unlearned == 0  # settled all the same


def test_answered_and_silent_decisions_are_first_learned_at_the_same_horizon(
    store: LogStore, registry: ModelRegistry
) -> None:
    clock = _log_clock(store)
    learner, seen = _spied(store, registry, clock)
    store.record_decision(decision("silent", created_at=1_000.0, window=600, learn_in=1.0))
    store.record_decision(decision("answered", created_at=1_000.0, window=600, learn_in=1.0))
    store.record_feedback("answered", "click", None)
    clock.now = 1_000.9
    assert learner.step() == 0  # feedback does not make an event due sooner
    clock.now = 1_001.0
    assert learner.step() == 2
    assert sorted(seen) == [[0.0], [1.0]]


def test_a_relearn_rollback_learns_corrections_of_the_discarded_versions_again(
    store: LogStore, registry: ModelRegistry
) -> None:
    clock = _log_clock(store)
    learner, seen = _spied(store, registry, clock)
    base = learner.version
    assert base is not None
    store.record_decision(decision("e1", created_at=1_000.0, window=600, learn_in=1.0))
    clock.now = 1_001.0
    learner.step()
    clock.now = 1_010.0
    store.record_feedback("e1", "click", None)
    learner.step()
    assert len(seen) == 2
    registry.activate(base.version, actor="test", reason="undo", relearn=True)
    relearner, seen_again = _spied(store, registry, clock)
    assert relearner.step() == 1
    assert seen_again == [[1.0]]  # first learned again, with every signal known now


def _fb(signal: str, value: float | None) -> Feedback:
    return Feedback(signal, "a", value, 0.0)


def test_a_decision_that_commits_after_the_learner_passed_its_time_is_still_learned(
    store: LogStore, registry: ModelRegistry
) -> None:
    # A decision's time is stamped before its insert waits for the write lock, so it
    # can land behind the learner's cursor.
    clock = _log_clock(store)
    learner, seen = _spied(store, registry, clock)
    store.record_decision(decision("on time", created_at=1_000.0, window=600, learn_in=1.0))
    clock.now = 1_002.0
    assert learner.step() == 1
    store.record_decision(decision("committed late", created_at=999.5, window=600, learn_in=1.0))
    assert learner.step() == 1
    assert _learned_in(store)["committed late"] is not None
    assert len(seen) == 2


def test_a_decision_committed_long_after_its_time_waits_for_the_next_read_from_the_start(
    store: LogStore, registry: ModelRegistry
) -> None:
    # After a snapshot the learner re-reads only `reread_seconds` behind its cursor; it
    # reads from the oldest unlearned decision every `full_reread_seconds` (on PostgreSQL
    # that read walks every learned mark's index entry until VACUUM clears them).
    clock = _log_clock(store)
    learner, seen = _spied(store, registry, clock)
    learner.options = replace(learner.options, reread_seconds=5.0, full_reread_seconds=3600.0)
    store.record_decision(decision("on time", created_at=1_000.0, window=600, learn_in=1.0))
    clock.now = 1_002.0
    assert learner.step() == 1  # published: the cursor goes back to 1_001 - 5
    store.record_decision(decision("a little late", created_at=999.0, window=600, learn_in=1.0))
    store.record_decision(decision("very late", created_at=980.0, window=600, learn_in=1.0))
    assert learner.step() == 1
    learned = _learned_in(store)
    assert learned["a little late"] is not None and learned["very late"] is None
    learner.options = replace(learner.options, full_reread_seconds=0.0)  # a minute has passed
    assert learner.step() == 1
    assert _learned_in(store)["very late"] is not None
    assert len(seen) == 3  # each learned once


def test_events_learned_but_not_yet_published_are_not_read_again_from_the_start(
    store: LogStore, registry: ModelRegistry
) -> None:
    clock = _log_clock(store)
    learner, seen = _spied(store, registry, clock)
    learner.options = replace(learner.options, full_reread_seconds=0.0)  # due at every step
    learner._snapshot_interval = 3600.0  # learned in memory, unmarked, for the whole test
    store.record_decision(decision("e1", created_at=1_000.0, window=600, learn_in=1.0))
    clock.now = 1_002.0
    assert learner.step() == 1
    assert learner.step() == 0  # its mark is not in the log yet: reading from the start would relearn it
    assert len(seen) == 1


class _CountedStop(threading.Event):
    """A stop event that records how long run() waits each time, and stops it after `waits` waits.

    `first_wait` runs once, before the first wait is recorded (to change the world mid-run).
    """

    def __init__(self, waits: int = 2, first_wait: Callable[[], None] | None = None) -> None:
        super().__init__()
        self.waits: list[float | None] = []
        self.limit = waits
        self.first_wait = first_wait

    def wait(self, timeout: float | None = None) -> bool:
        if not self.waits and self.first_wait is not None:
            self.first_wait()
        self.waits.append(timeout)
        if len(self.waits) >= self.limit:
            self.set()
        return self.is_set()


def test_run_waits_a_poll_interval_after_a_step_that_learned(
    store: LogStore, registry: ModelRegistry
) -> None:
    """A step drains what is due; reading the log again at once would cost round trips for nothing."""
    now = time.time()
    for k in range(3):
        store.record_decision(decision(f"due{k}", created_at=now - 100, window=10))
    learner = Learner(
        store,
        registry,
        RewardRules(),
        LearnerOptions(ARGS, snapshot_interval_seconds=0.0, poll_seconds=3600.0),
    )
    stop = _CountedStop()
    steps_before_wait: list[int] = []
    step = learner.step

    def counted_step(now: float | None = None) -> int:
        steps_before_wait.append(len(stop.waits))
        return step(now)

    learner.step = counted_step  # type: ignore[method-assign]
    learner.run(stop)
    assert steps_before_wait == [0, 1]  # one step, a wait, one step, a wait: never two in a row
    first = stop.waits[0]
    assert first is not None and first > 3000  # a whole poll interval after the step that learned
    assert set(_learned_in(store).values()) == {"v2"}


def test_run_wakes_when_a_snapshot_of_what_it_learned_falls_due(
    store: LogStore, registry: ModelRegistry
) -> None:
    """Waiting a whole poll interval with learned events pending would delay their model."""
    now = time.time()
    store.record_decision(decision("due", created_at=now - 100, window=10))
    options = LearnerOptions(ARGS, snapshot_interval_seconds=30.0, poll_seconds=3600.0)
    learner = Learner(store, registry, RewardRules(), options)
    stop = _CountedStop()
    learner.run(stop)
    first = stop.waits[0]
    assert first is not None and 0.0 < first <= 30.0  # the snapshot's due time, not the poll's
    assert _learned_in(store) == {"due": "v2"}  # published on the way out


def test_run_never_spins_when_learning_is_frozen_with_events_pending(
    store: LogStore, registry: ModelRegistry
) -> None:
    """Frozen, a step returns before its snapshot: a snapshot due in the past must not mean wait(0)."""
    now = time.time()
    store.record_decision(decision("due", created_at=now - 100, window=10))
    options = LearnerOptions(ARGS, snapshot_interval_seconds=0.5, poll_seconds=3600.0)
    learner = Learner(store, registry, RewardRules(), options)

    def freeze() -> None:
        registry.freeze_learning(True, actor="test")
        learner._last_snapshot -= 10.0  # the snapshot is now long due

    stop = _CountedStop(waits=3, first_wait=freeze)
    learner.run(stop)
    assert len(stop.waits) == 3
    later = stop.waits[1:]
    assert all(w is not None and w > 3000 for w in later), later  # a whole poll interval each time
