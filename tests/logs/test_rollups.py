"""Rollups: exact at any moment, reward figures only from ended windows, never counted twice.

Every test runs on SQLite and on PostgreSQL (tests/logs/conftest.py); on PostgreSQL,
writers that commit out of id order are still counted exactly once.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psycopg
import pytest

from logs.dialect import POSTGRESQL, DatabaseUrl
from logs.records import DecisionRecord
from logs.rollup_queries import RollupReader
from logs.rollups import Rollups, delay_bucket, feature_tokens
from logs.shopper_store import ShopperStore
from logs.store import LogStore
from policies.base import Action, Feedback, SlotChoice
from policies.learning.rewards import RewardRules
from service import loop_health

T0 = 1_800_000_000.0  # a minute boundary
WINDOW = 60.0


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def log(log_location: Path | DatabaseUrl, clock: Clock) -> Iterator[LogStore]:
    store = LogStore(log_location, clock=clock)
    store.migrate()
    yield store
    store.close()


def decide(
    store: LogStore,
    event_id: str,
    at: float,
    *,
    version: str = "v1",
    chosen: str = "a",
    device: str = "mobile",
    p: float = 0.5,
) -> None:
    actions = (
        Action("a", {"offer": {"category": "tripod", "price": 30.0}}),
        Action("b", {"offer": {"category": "bag", "price": 20.0}}),
    )
    store.record_decision(
        DecisionRecord(
            event_id=event_id,
            created_at=at,
            closes_at=at + WINDOW,
            model_version=version,
            request_sha256=event_id,
            context={"shopper": {"device": device}},
            actions=actions,
            excluded=frozenset(),
            probabilities=(0.5, 0.5) if p == 0.5 else (0.8, 0.2),
            choices=(SlotChoice(0, chosen, p),),
            slots=1,
        )
    )


def roll(store: LogStore) -> None:
    Rollups(store).roll(now=store.clock(), grace_seconds=0.0, reward_of=RewardRules().reward_for)


def figures(store: LogStore) -> dict[str, loop_health.Figure]:
    return loop_health.loop_health(store, window_minutes=10, grace_seconds=0.0).figures


def test_counts_are_exact_before_and_after_the_rollup(log: LogStore, clock: Clock) -> None:
    for k in range(5):
        decide(log, f"e{k}", T0 + k)
    clock.now = T0 + 10
    log.record_feedback("e0", "click", None)
    # nothing rolled up yet: the figures come from the log past the watermarks
    before = figures(log)
    span = 9 + 10 / 60  # nine whole minutes and the current one's first 10 s
    assert before["decisions_per_minute"].value == pytest.approx(5 / span)
    assert before["feedback_per_minute"].value == pytest.approx(1 / span)
    roll(log)
    decide(log, "e5", T0 + 11)  # after the rollup: counted from the tail
    after = figures(log)
    assert after["decisions_per_minute"].value == pytest.approx(6 / span)
    assert after["feedback_per_minute"].value == pytest.approx(1 / span)
    roll(log)
    roll(log)  # rolling again adds nothing twice
    assert figures(log)["decisions_per_minute"].value == pytest.approx(6 / span)
    total = log.conn.execute("SELECT sum(decisions) FROM rollup_decisions").fetchone()[0]
    assert total == 6


def test_reward_figures_wait_for_the_window_to_end(log: LogStore, clock: Clock) -> None:
    for k in range(4):
        decide(log, f"e{k}", T0 + k)
    clock.now = T0 + 5
    log.record_feedback("e0", "click", None)
    log.record_feedback("e1", "purchase", 200.0)
    roll(log)
    early = figures(log)["feedback_share"]
    assert early.value is None  # no window has ended: no share yet, rather than 2 of 4 answered
    assert "ended" in early.window
    clock.now = T0 + 2 + WINDOW  # e0, e1 and e2 have ended, e3 has not
    roll(log)
    share = figures(log)["feedback_share"]
    assert share.value == pytest.approx(2 / 3)
    assert share.as_of == pytest.approx(T0 + 2 + WINDOW)
    assert not share.is_stale
    row = log.conn.execute(
        "SELECT sum(ended), sum(reward_sum), sum(reward_sq) FROM rollup_decisions"
    ).fetchone()
    rules = RewardRules()
    rewards = [1.0, rules.signal_reward("purchase", 200.0), rules.default_reward]
    assert tuple(row) == pytest.approx((3, sum(rewards), sum(r * r for r in rewards)))
    clock.now = T0 + 3 + WINDOW + 120  # e3 ended silent; an old watermark would be stale
    assert figures(log)["feedback_share"].is_stale
    roll(log)
    assert figures(log)["feedback_share"].value == pytest.approx(2 / 4)


def test_rates_hold_steady_through_a_minute(log: LogStore, clock: Clock) -> None:
    # One decision a second, read early, midway and late in a minute: always 60 a minute,
    # never short by the part of the window's first minute that is not yet over.
    made = T0 - 11 * 60
    for now in (T0 + 0.5, T0 + 30.0, T0 + 59.5):
        while made <= now:
            decide(log, f"e{made:.0f}", made)
            made += 1.0
        clock.now = now
        roll(log)
        assert figures(log)["decisions_per_minute"].value == pytest.approx(60.0, rel=0.01), now


def test_late_feedback_and_delays(log: LogStore, clock: Clock) -> None:
    decide(log, "e0", T0)
    decide(log, "e1", T0)
    clock.now = T0 + 3
    log.record_feedback("e0", "click", None)
    clock.now = T0 + WINDOW + 30
    log.record_feedback("e1", "click", None)  # after the window: late
    roll(log)
    health = loop_health.loop_health(log, window_minutes=10, grace_seconds=0.0)
    assert health.figures["late_feedback"].value == 1
    counts = {row["le"]: row["count"] for row in health.delay_histogram}
    assert counts[5.0] == 1 and counts[300.0] == 1
    assert health.feedback_by_signal == {"click": 2}


def test_offers_count_shown_clicked_and_revenue_once_windows_end(log: LogStore, clock: Clock) -> None:
    decide(log, "e0", T0, chosen="a")
    decide(log, "e1", T0, chosen="a")
    decide(log, "e2", T0, chosen="b")
    clock.now = T0 + 1
    log.record_feedback("e0", "click", None)
    log.record_feedback("e0", "purchase", 80.0)
    log.record_feedback("e2", "dismiss", None)
    roll(log)
    assert loop_health.offers(log, grace_seconds=0.0).by_category == []  # nothing ended yet
    clock.now = T0 + WINDOW + 1
    roll(log)
    view = loop_health.offers(log, grace_seconds=0.0)
    by = {row["name"]: row for row in view.by_category}
    assert by["tripod"]["shown"] == 2 and by["tripod"]["clicked"] == 1
    assert by["tripod"]["revenue_per_shown"] == pytest.approx(40.0)
    assert by["bag"]["dismiss_rate"] == pytest.approx(1.0)
    assert {row["name"] for row in view.by_offer} == {"a", "b"}


def test_offers_window_reaches_back_across_an_hour_boundary(log: LogStore, clock: Clock) -> None:
    # T0 is on an hour boundary: a decision made 30 s before it is in "the last hour" after it.
    decide(log, "e0", T0 - 30, chosen="a")
    clock.now = T0 - 30
    ShopperStore(log).record_shown("k", "e0", [("a", "tripod")], verdict="show", reason="ok")
    clock.now = T0 + 40
    roll(log)
    view = loop_health.offers(log, window_hours=1, grace_seconds=0.0)
    assert [(row["name"], row["shown"]) for row in view.by_category] == [("tripod", 1)]
    assert [(row["verdict"], row["count"]) for row in view.pacing] == [("show", 1)]
    assert view.since == T0 - 3600  # the whole hours the window overlaps, said as they are
    clock.now = T0 + 3600 + 40  # two hours on, both have left the window
    view = loop_health.offers(log, window_hours=1, grace_seconds=0.0)
    assert view.by_category == [] and view.pacing == []
    assert view.since == T0


def test_erasing_a_shopper_restates_what_their_rolled_up_decisions_added(log: LogStore, clock: Clock) -> None:
    decide(log, "mine", T0, chosen="a")
    decide(log, "theirs", T0 + 1, chosen="a")
    shoppers = ShopperStore(log)
    shoppers.record_shown("k", "mine", [("a", "tripod")], verdict="show", reason="ok")
    clock.now = T0 + 2
    log.record_feedback("mine", "purchase", 123.45)
    clock.now = T0 + WINDOW + 5
    roll(log)

    def cell() -> tuple[float, ...]:
        offers = log.conn.execute("SELECT shown, purchased, revenue FROM rollup_offers").fetchone()
        rewards = log.conn.execute("SELECT sum(ended), sum(answered), sum(reward_sum) FROM rollup_decisions")
        return (*offers, *rewards.fetchone())

    rules = RewardRules()
    exact, rounded = (rules.reward_for([Feedback("purchase", "a", v, T0 + 2)], "a") for v in (123.45, 120.0))
    assert exact != rounded  # the value moves the reward: both sums must be restated
    assert cell() == pytest.approx((2, 1, 123.45, 2, 1, exact + rules.default_reward))
    marks = RollupReader(log).watermarks()
    shoppers.erase("k", RewardRules().reward_for)
    # Rolled up as if the anonymised decision had been: the order value rounded, counts kept.
    assert cell() == pytest.approx((2, 1, 120.0, 2, 1, rounded + rules.default_reward))
    assert log.conn.execute("SELECT revenue FROM rollup_offers").fetchone()[0] == 120.0  # exactly
    after = RollupReader(log).watermarks()
    assert after.erasures == marks.erasures + 1  # a roller that read before finds it moved
    assert after.updated_at == marks.updated_at  # and the chore's freshness is not touched
    roll(log)
    assert cell() == pytest.approx((2, 1, 120.0, 2, 1, rounded + rules.default_reward))  # nothing twice


def test_an_erasure_while_a_page_is_read_makes_it_read_again_not_skipped(
    log: LogStore, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    decide(log, "mine", T0, chosen="a")
    ShopperStore(log).record_shown("k", "mine", [("a", "tripod")], verdict="show", reason="ok")
    clock.now = T0 + WINDOW + 5
    roll(log)
    for name in ("e1", "e2", "e3"):
        decide(log, name, T0 + 100, chosen="b")
    clock.now = T0 + 100 + WINDOW + 5
    original, erased = Rollups._commit, []

    def erase_first(self: Rollups, state: dict[str, float], *args: object) -> bool:
        if "ended_rowid" in state and not erased:  # after the ended page was read, before it is added
            erased.append(ShopperStore(log).erase("k", RewardRules().reward_for))
        return original(self, state, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(Rollups, "_commit", erase_first)
    roll(log)
    assert erased and erased[0].decisions_anonymised == 1
    ended, shown = log.conn.execute(
        "SELECT (SELECT sum(ended) FROM rollup_decisions), (SELECT sum(shown) FROM rollup_offers)"
    ).fetchone()
    assert (ended, shown) == (4, 4)  # the three read before the erasure counted, once


def test_an_erasure_of_a_decision_in_a_page_being_read_is_added_only_anonymised(
    log: LogStore, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    decide(log, "mine", T0, chosen="a")
    ShopperStore(log).record_shown("k", "mine", [("a", "tripod")], verdict="show", reason="ok")
    clock.now = T0 + 2
    log.record_feedback("mine", "purchase", 123.45)
    clock.now = T0 + WINDOW + 5
    original, erased = Rollups._commit, []

    def erase_first(self: Rollups, state: dict[str, float], *args: object) -> bool:
        if "ended_rowid" in state and not erased:  # the page holding "mine" was read, not yet added
            erased.append(ShopperStore(log).erase("k", RewardRules().reward_for))
        return original(self, state, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(Rollups, "_commit", erase_first)
    roll(log)
    assert erased and erased[0].decisions_anonymised == 1
    assert [tuple(r) for r in log.conn.execute("SELECT shown, revenue FROM rollup_offers")] == [(1, 120.0)]


def test_exploration_share_and_learning_series(log: LogStore, clock: Clock) -> None:
    decide(log, "e0", T0, chosen="a", p=0.8, version="v1")  # the most likely offer
    decide(log, "e1", T0 + 1, chosen="b", p=0.2, version="v2")  # explored
    clock.now = T0 + WINDOW + 5
    log.record_feedback("e0", "click", None)  # late: not learned, not rewarded
    roll(log)
    assert figures(log)["exploration_share"].value == pytest.approx(0.5)
    view = loop_health.learning(log, window_hours=1, grace_seconds=0.0)
    assert 3540 < clock.now - view.since <= 3600 and view.since % 60 == 0  # whole minutes, said as they are
    assert [s.name for s in view.by_version] == ["v1", "v2"]
    assert view.overall.value == pytest.approx(0.0)
    assert view.overall.unit == "reward per decision"


def test_feature_tokens_bin_numbers_and_keep_strings() -> None:
    tokens = feature_tokens(
        {"shopper": {"device": "mobile", "tags": ["a", "b"], "value": 100.0, "vip": True}}
    )
    assert ("shopper", "device", "device=mobile") in tokens
    assert ("shopper", "tags", "tags=b") in tokens
    assert ("shopper", "value", f"value~{int(math.log2(101))}") in tokens
    assert delay_bucket(0.5) == 0 and delay_bucket(1e9) == 7


def test_estimates_put_uniform_and_most_popular_beside_the_logged_policy(log: LogStore, clock: Clock) -> None:
    from service.loop_chores import HealthChores

    rng = np.random.default_rng(3)
    hour = T0 - T0 % 3600
    for k in range(600):  # the logged policy shows "a" (always clicked) 80% of the time
        chosen = "a" if rng.random() < 0.8 else "b"
        at = hour + k * 6.0
        decide(log, f"e{k}", at, chosen=chosen, p=0.8 if chosen == "a" else 0.2)
        if chosen == "a":
            clock.now = at + 1
            log.record_feedback(f"e{k}", "click", None)
    chores = HealthChores(log, rules=RewardRules, window_seconds=lambda: WINDOW, grace_seconds=0.0)
    clock.now = hour + 3600 + 30  # the hour's last windows are still open: nothing to estimate
    chores.roll()
    assert chores.estimate() == 0
    clock.now = hour + 3600 + WINDOW + 1
    chores.roll()
    assert chores.estimate() == 1
    assert chores.estimate() == 0  # done once
    view = loop_health.learning(log, window_hours=3, grace_seconds=0.0)
    assert len(view.compared) == 1
    hour_row = view.compared[0]
    logged, uniform, popular = hour_row["logged"], hour_row["uniform"], hour_row["most-popular"]
    assert logged["n"] == 500 and hour_row["decisions"] == 600  # a bounded sample of the hour
    assert logged["low"] <= 0.8 <= logged["high"]
    assert uniform["low"] <= 0.5 <= uniform["high"]
    assert popular["value"] > uniform["high"]
    # The next hour has a decision whose window is still open just after it: the last hour's
    # view still shows the newest completed hour rather than none.
    decide(log, "late", hour + 2 * 3600 - 10, chosen="a", p=0.8)
    clock.now = hour + 2 * 3600 + 30
    chores.roll()
    assert chores.estimate() == 0
    latest = loop_health.learning(log, window_hours=1, grace_seconds=0.0, reward_window_seconds=WINDOW)
    assert [h["hour_start"] for h in latest.compared] == [hour]
    # ... but not an hour long gone: a day later, with nothing estimated since, none.
    clock.now = hour + 26 * 3600
    gone = loop_health.learning(log, window_hours=1, grace_seconds=0.0, reward_window_seconds=WINDOW)
    assert gone.compared == []


def test_reward_series_group_consecutive_model_versions(log: LogStore, clock: Clock) -> None:
    for k in range(1, 21):  # a version a second, as the learner publishes them
        log.conn.execute(
            "INSERT INTO models (version, parent, kind, vw_args, created_at, events_learned, sha256, path,"
            " state)"
            " VALUES (?, NULL, 'vw', '', ?, 0, '', '', 'retired')",
            (f"v{k}", T0 + k),
        )
        decide(log, f"e{k}", T0 + k, version=f"v{k}")
        clock.now = T0 + k + 0.5
        if k > 10:
            log.record_feedback(f"e{k}", "click", None)  # the later versions earn more
    clock.now = T0 + 21 + WINDOW
    roll(log)
    view = loop_health.learning(log, window_hours=1, max_series=4, grace_seconds=0.0)
    assert [s.name for s in view.by_version] == ["v1–v5", "v6–v10", "v11–v15", "v16–v20"]
    means = [
        sum(p["mean"] * p["n"] for p in s.points) / sum(p["n"] for p in s.points) for s in view.by_version
    ]
    assert means == pytest.approx([0.0, 0.0, 1.0, 1.0])
    assert view.overall.value == pytest.approx(0.5)


def test_a_time_budget_stops_a_run_and_the_next_one_goes_on(log: LogStore, clock: Clock) -> None:
    for k in range(5):
        decide(log, f"e{k}", T0 + k)
    clock.now = T0 + WINDOW + 10
    rollups = Rollups(log)
    rules = RewardRules()
    spent = rollups.roll(now=clock.now, grace_seconds=0.0, reward_of=rules.reward_for, budget_seconds=0.0)
    assert not spent.done and spent.decisions == 0
    assert figures(log)["feedback_share"].is_stale  # nothing ended has been rolled up yet
    done = rollups.roll(now=clock.now, grace_seconds=0.0, reward_of=rules.reward_for, page=2)
    assert done.done and done.decisions == 5 and done.ended == 5
    assert figures(log)["feedback_share"].value == 0.0


def test_errors_by_kind_include_what_the_learner_skipped(log: LogStore) -> None:
    log.conn.execute(
        "INSERT INTO control (key, value, updated_at) VALUES ('learner_skipped_oversized', '3', 0)"
    )
    errors = loop_health.loop_health(log, now=T0).errors
    assert {"route": "learner", "status": 0, "code": "skipped_oversized", "count": 3} in errors


def _rolled(store: LogStore) -> tuple[int, int]:
    """Decisions and feedback the rollups have counted."""
    decisions = store.conn.execute("SELECT coalesce(sum(decisions), 0) FROM rollup_decisions").fetchone()[0]
    feedback = store.conn.execute("SELECT coalesce(sum(count), 0) FROM rollup_feedback").fetchone()[0]
    return int(decisions), int(feedback)


def test_writers_committing_out_of_id_order_are_counted_once(pg_url: str, clock: Clock) -> None:
    log = LogStore(DatabaseUrl(POSTGRESQL, conninfo=pg_url), clock=clock)
    log.migrate()
    decide(log, "first", T0)
    slow = psycopg.connect(pg_url)  # a second node's transaction: takes the lower ids, commits last
    try:
        columns = ", ".join(
            r[0]
            for r in slow.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'decisions'"
                " AND table_schema = current_schema() AND column_name NOT IN ('event_id', 'seq', 'txid')"
            )
        )
        slow.execute(
            f"INSERT INTO decisions (event_id, {columns}) SELECT 'slow', {columns} FROM decisions"
            " WHERE event_id = 'first'"
        )
        slow.execute(
            "INSERT INTO feedback (event_id, action_id, signal, value, dedupe_key, received_at, on_time)"
            " VALUES ('first', 'b', 'click', NULL, 'slow', %s, 1)",
            (T0 + 1,),
        )
        decide(log, "fast", T0 + 2)  # committed at once, with higher ids
        clock.now = T0 + 3
        log.record_feedback("fast", "click", None)
        ids = log.conn.execute("SELECT event_id, seq FROM decisions ORDER BY seq").fetchall()
        slow_seq = slow.execute("SELECT seq FROM decisions WHERE event_id = 'slow'").fetchone()[0]
        assert [r[0] for r in ids] == ["first", "fast"] and slow_seq < ids[1][1]

        roll(log)  # an id watermark would move past "fast" here and never count "slow"
        assert _rolled(log) == (1, 0)
        reader = RollupReader(log)
        assert [r["created_at"] for r in reader.decisions_tail(reader.watermarks()).rows] == [T0 + 2]
        span = 9 + 3 / 60  # nine whole minutes and the current one's first 3 s
        assert figures(log)["decisions_per_minute"].value == pytest.approx(2 / span)  # rolled + tail
        slow.commit()
        roll(log)
        assert _rolled(log) == (3, 2)
        roll(log)
        assert _rolled(log) == (3, 2)
        assert reader.decisions_tail(reader.watermarks()).rows == ()
        assert figures(log)["decisions_per_minute"].value == pytest.approx(3 / span)
    finally:
        slow.close()
        log.close()


def test_a_writer_in_another_database_does_not_hold_the_rollups_back(
    pg_url: str, pg_server: str, clock: Clock
) -> None:
    log = LogStore(DatabaseUrl(POSTGRESQL, conninfo=pg_url), clock=clock)
    log.migrate()
    elsewhere = psycopg.connect(pg_server)  # another application on the same server, mid-transaction
    try:
        elsewhere.execute("CREATE TEMP TABLE busy (x INTEGER)")
        elsewhere.execute("INSERT INTO busy VALUES (1)")
        decide(log, "e0", T0)
        roll(log)
        assert _rolled(log) == (1, 0)
    finally:
        elsewhere.close()
        log.close()
