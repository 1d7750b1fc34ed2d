"""The learner: the one process that updates the model from the joined log.

Every decision is learned first at its ``learn_at`` (a short horizon after it was
made), with the feedback known then, whether it has any or not, so answered and
silent decisions reach the model alike in time and the model stays fresh. A signal
that arrives later, within the reward window, is learned as a *correction*: the
event is learned again with the reward all its on-time signals now earn (a click
then a purchase ends up learned as the purchase), and only when that reward
changed. Events and the feedback they were learned with are marked in the same
transaction that publishes the snapshot containing them, so a learner that dies
between snapshots relearns exactly what its last snapshot lacks, and no signal is
learned twice. docs/exploration.md compares this with learning at the first signal
and with waiting for the whole window.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from policies.base import Feedback, LoggedEvent
from policies.deciding.features import FeatureLimits, TooCostly, example_cost
from policies.deciding.live_config import InForceSource
from policies.deciding.vw import VWPolicy
from policies.learning.guardrail import Guardrail
from policies.learning.registry import ActiveChanged, ModelRegistry, ModelVersion
from policies.learning.rewards import RewardRules
from policies.learning.shadow import Shadow

__all__ = ["ClosedEventSource", "Learner", "LearnerOptions"]

log = logging.getLogger(__name__)
Cursor = tuple[float, str]


class ClosedEventSource(Protocol):
    """Where closed events come from (``logs.store.LogStore`` in production)."""

    def closed_events(
        self, *, closed_before: float, after: Cursor | None = None, limit: int = 500
    ) -> list[tuple[LoggedEvent, Cursor]]: ...

    def correction_events(
        self, *, closed_before: float, skip: Iterable[str] = (), limit: int = 500
    ) -> list[tuple[LoggedEvent, tuple[Feedback, ...]]]: ...


@dataclass(frozen=True, slots=True)
class LearnerOptions:
    vw_args: str
    snapshot_interval_seconds: float = 1.0
    poll_seconds: float = 0.2
    # Read this far behind the clock, so that nearly every write stamped before then has
    # committed. Correctness does not rest on it: a decision that commits later is
    # found by a later read (below), and a feedback row that commits after its event was
    # read is learned as a correction.
    grace_seconds: float = 0.2
    # After a snapshot (every learned event marked) the next read starts this far before
    # where the last one ended: a decision that committed after the cursor passed its
    # time is found then. At least every `full_reread_seconds` a read starts from the
    # oldest unlearned decision, so one that committed later still is learned too. Not
    # at every snapshot: on PostgreSQL the learned marks leave their entries in the
    # to-learn index until VACUUM, and a read from the start walks them all.
    reread_seconds: float = 10.0
    full_reread_seconds: float = 60.0
    batch_size: int = 500
    guardrail_check_seconds: float = 10.0
    limits: FeatureLimits = FeatureLimits()  # the service's XSELL_MAX_* limits


# The control-table key under which the learner counts the events it skipped as too costly.
SKIPPED_OVERSIZED_KEY = "learner_skipped_oversized"


class Learner:
    """Learn closed events in order and publish versioned snapshots."""

    def __init__(
        self,
        source: ClosedEventSource,
        registry: ModelRegistry,
        rules: RewardRules,
        options: LearnerOptions,
        *,
        shadow: Shadow | None = None,
        guardrail: Guardrail | None = None,
        after_snapshot: Callable[[], object] | None = None,
        live: InForceSource | None = None,
        chores: Sequence[tuple[float, Callable[[], object]]] = (),
        clock: Callable[[], float] = time.time,
    ):
        self.source = source
        self.registry = registry
        self.rules = rules  # replaced by the rules in force at every step when `live` is given
        self.live = live  # the configuration in force: rewards, learning mode, snapshot pace
        # (every_seconds, job): log retention, WAL checkpoints; run between steps
        self.chores = list(chores)
        self._chores_done_at = [float("-inf")] * len(self.chores)
        self._snapshot_interval = options.snapshot_interval_seconds
        self.options = options
        self.shadow = shadow
        self.guardrail = guardrail
        self.after_snapshot = after_snapshot  # e.g. the automatic promotion rule
        self._last_guardrail_check = time.monotonic()
        self.version: ModelVersion | None = None
        self.policy: VWPolicy | None = None
        self.clock = clock  # the log's clock: tests drive time instead of waiting for it
        self._cursor: Cursor | None = None
        self._reached: float | None = None  # the latest learn_at read: re-reads go back from it
        self._full_read_at = float("-inf")  # time.monotonic() of the last read from the start
        # Learned since the last snapshot: event id -> the feedback rows learned with it.
        self._pending: dict[str, tuple[int, ...]] = {}
        self.corrections = 0  # events learned again because a later signal changed their reward
        self._last_snapshot = time.monotonic()

    def start(self) -> ModelVersion:
        """Load the active model (publishing an untrained one first if there is none)."""
        active = self.registry.ensure_initial(self.options.vw_args)
        self._follow(active)
        assert self.version is not None
        return self.version

    def step(self, now: float | None = None) -> int:
        """Learn every event closed by now; snapshot if due. Return how many were learned."""
        self._follow_external_activation()
        for k, (every_seconds, job) in enumerate(self.chores):
            if time.monotonic() - self._chores_done_at[k] >= every_seconds:
                self._chores_done_at[k] = time.monotonic()
                job()
        if self.live is not None:
            in_force = self.live.current()
            if not in_force.live.learns:
                return 0  # logging only: events wait, unlearned, until the mode changes
            self.rules = in_force.rules
            self._snapshot_interval = in_force.live.snapshot_interval_seconds
        if self.registry.learning_frozen():
            return 0  # an operator froze learning (e.g. with a rollback); serving goes on
        closed_before = (self.clock() if now is None else now) - self.options.grace_seconds
        since_full_read = time.monotonic() - self._full_read_at
        if not self._pending and since_full_read >= self.options.full_reread_seconds:
            self._cursor = None  # everything learned is marked: reading from the start is safe
        if self._cursor is None:
            self._full_read_at = time.monotonic()
        learned = 0
        while True:
            page = self.source.closed_events(
                closed_before=closed_before, after=self._cursor, limit=self.options.batch_size
            )
            for event, cursor in page:
                self.learn(event)
                self._cursor = cursor
                self._reached = cursor[0] if self._reached is None else max(self._reached, cursor[0])
                learned += 1
            if len(page) < self.options.batch_size:
                break
        learned += self._learn_corrections(closed_before)
        if self._pending and time.monotonic() - self._last_snapshot >= self._snapshot_interval:
            self.snapshot()
        if self.guardrail is not None and (
            time.monotonic() - self._last_guardrail_check >= self.options.guardrail_check_seconds
        ):
            self._last_guardrail_check = time.monotonic()
            if self.guardrail.check() is not None:
                self._follow_external_activation()
        return learned

    def learn(self, event: LoggedEvent) -> None:
        """Learn one event with the reward its feedback earns each chosen offer."""
        assert self.policy is not None, "call start() first"
        if self._oversized(event, count=True):
            self._pending[event.event_id] = _read(event)  # settled: never read again
            return
        rewards = rewards_for(event, self.rules)
        if self.shadow is not None:
            self.shadow.observe(event, rewards)  # scored before it learns, like the active model
        self.policy.learn(event, rewards)
        self._pending[event.event_id] = _read(event)

    def _oversized(self, event: LoggedEvent, *, count: bool) -> bool:
        """Say whether an event costs more than the limits (a log from before them can hold one).

        Learning it could stall the learner for minutes; it is skipped, and counted
        in the log's control table so /metrics can report it from any process.
        """
        assert self.policy is not None
        try:
            self.options.limits.check(example_cost(event.context, event.actions, self.policy.vw_args))
        except TooCostly as error:
            if count:
                log.warning("skipped event %s, too costly to learn: %s", event.event_id, error)
                skipped = int(self.registry.index.control(SKIPPED_OVERSIZED_KEY) or 0) + 1
                self.registry.index.set_control(SKIPPED_OVERSIZED_KEY, str(skipped))
            return True
        return False

    def _learn_corrections(self, closed_before: float) -> int:
        """Learn again the events whose reward a signal changed after they were learned."""
        assert self.policy is not None
        corrected = 0
        while True:
            page = self.source.correction_events(
                closed_before=closed_before, skip=self._pending, limit=self.options.batch_size
            )
            for event, learned_feedback in page:
                rewards = rewards_for(event, self.rules)
                before = rewards_for(replace(event, feedback=learned_feedback), self.rules)
                if rewards != before and not self._oversized(event, count=False):
                    targets = correction_targets(before, rewards)
                    if self.shadow is not None:
                        self.shadow.correct(event, targets)
                    self.policy.learn(event, targets)
                    corrected += 1
                # Marked either way: a signal that changes nothing is settled too.
                self._pending[event.event_id] = _read(event)
            if len(page) < self.options.batch_size:
                break
        self.corrections += corrected
        return corrected

    def snapshot(self) -> ModelVersion | None:
        """Publish what has been learned since the last snapshot as a new active version."""
        assert self.policy is not None and self.version is not None
        self._last_snapshot = time.monotonic()
        if not self._pending:
            return None
        try:
            published = self.registry.publish(
                self.policy,
                parent=self.version.version,
                learned_event_ids=self._pending,
                expect_active=self.version.version,
            )
        except ActiveChanged:
            # An operator rolled back or promoted while we were learning: what we
            # learned sits on a model that no longer serves. Drop it; the events stay
            # unlearned and the new active model learns them.
            self._follow_external_activation()
            return None
        log.info(
            "published %s (%d new events, %d in all)",
            published.version,
            len(self._pending),
            published.events_learned,
        )
        self.version = published
        self._pending = {}
        # Everything learned so far is now marked in the log, so reading again from a
        # little earlier finds any decision that committed after the cursor passed its
        # learn_at (its time is stamped before its insert waits for the write lock).
        # (The next step reads from the start instead when a full read is due.)
        if self._reached is not None:
            self._cursor = (self._reached - self.options.reread_seconds, "")
        if self.shadow is not None:
            self.shadow.snapshot()
        if self.after_snapshot is not None:
            self.after_snapshot()
        return published

    def run(self, stop: threading.Event) -> None:
        """Step until `stop` is set, then publish what is pending."""
        self.start()
        while not stop.is_set():
            started = time.monotonic()
            self.step()
            # A step learns everything due, so the next one waits a poll interval for
            # more to gather instead of reading the log again at once: a step's fixed
            # cost (the active model, the controls, the two event queries: round trips
            # on PostgreSQL) exceeded learning the handful of events it found under load.
            # It wakes early when a snapshot of what it learned falls due, so a click
            # is served no later than before.
            # A due time already past means the step could not snapshot (learning frozen,
            # or logging only): then wait the poll interval, never spin.
            wake = started + self.options.poll_seconds
            due = self._last_snapshot + self._snapshot_interval
            if self._pending and due > time.monotonic():
                wake = min(wake, due)
            stop.wait(max(0.0, wake - time.monotonic()))
        if self._pending:
            self.snapshot()

    def _follow(self, model: ModelVersion) -> None:
        self.policy = self.registry.load(model)
        self.version = model
        self._cursor = self._reached = None  # start again from all the new base has not learned
        self._pending = {}

    def _follow_external_activation(self) -> None:
        """Continue from whatever an operator made active (e.g. a rollback)."""
        active = self.registry.active()
        if active is not None and self.version is not None and active.version != self.version.version:
            log.warning("active model changed to %s outside the learner; continuing from it", active.version)
            self._follow(active)


def correction_targets(learned: Sequence[float], now: Sequence[float]) -> list[float]:
    """Return what a correction learns so that, with what was learned before, it averages `now`.

    An online learner cannot unlearn the first example (reward `learned`); learned
    again with `now` alone, the event's two examples would average halfway, and offers
    whose signals come late would look worse than they are. A target of
    ``now + (now - learned)`` makes the pair average exactly `now` (measured in
    docs/exploration.md: it ends closer to learning each decision once, complete).

    >>> correction_targets([0.0, 1.0], [1.0, 2.0])
    [2.0, 3.0]
    """
    return [2 * reward - before for before, reward in zip(learned, now, strict=True)]


def _read(event: LoggedEvent) -> tuple[int, ...]:
    """The log rows of the feedback an event was learned with (marked learned at publish)."""
    return tuple(f.log_id for f in event.feedback)


def rewards_for(event: LoggedEvent, rules: RewardRules) -> Sequence[float]:
    """Return the reward for each slot of an event, from its on-time feedback."""
    return list(rules.slot_rewards(event))
