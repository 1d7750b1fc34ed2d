from __future__ import annotations

import multiprocessing
import sqlite3
import time
from dataclasses import replace
from pathlib import Path

import pytest

from logs.dialect import DatabaseUrl, parse_database_url
from logs.records import EventConflict, UnknownAction, UnknownEvent
from logs.store import LogStore
from tests.logs.helpers import decision


def test_decision_round_trips_everything_needed_to_retrain(store: LogStore) -> None:
    original = decision(slots=2)
    stored, is_new = store.record_decision(original)
    assert is_new
    assert store.find_decision("e1") == original == stored


def test_same_request_retried_returns_the_stored_decision(store: LogStore) -> None:
    first, _ = store.record_decision(decision())
    again, is_new = store.record_decision(decision(created_at=first.created_at + 5))
    assert not is_new
    assert again == first


def test_event_id_reused_for_another_request_conflicts(store: LogStore) -> None:
    store.record_decision(decision())
    with pytest.raises(EventConflict):
        store.record_decision(decision(fingerprint="other"))


def test_feedback_twice_counts_once(store: LogStore) -> None:
    store.record_decision(decision())
    first = store.record_feedback("e1", "click", None)
    second = store.record_feedback("e1", "click", None)
    assert (first.duplicate, second.duplicate) == (False, True)
    count = store.conn.execute("SELECT COUNT(*) FROM feedback").fetchone()[0]
    assert count == 1


def test_feedback_on_time_is_decided_once_and_a_duplicate_reports_it(store: LogStore) -> None:
    clock = FakeClock(1000.0)
    store.clock = clock
    store.record_decision(decision(created_at=1000.0, window=600, slots=2))
    store.record_decision(replace(decision("waiting", created_at=1000.0, window=600), deferred=True))
    clock.now = 1700.0  # after the window
    late = store.record_feedback("e1", "purchase", 12.5, action_id="b")
    assert (late.action_id, late.duplicate, late.on_time) == ("b", False, False)
    clock.now = 1000.0  # the same post again, as if on time: still the stored verdict
    again = store.record_feedback("e1", "purchase", 12.5, action_id="b")
    assert (again.duplicate, again.on_time) == (True, False)
    assert store.record_feedback("e1", "click", None).on_time  # on time, the first offer
    # Before a deferred decision is activated nobody saw it: kept, never on time.
    assert not store.record_feedback("waiting", "click", None).on_time
    sql = "SELECT event_id, action_id, signal, value, on_time FROM feedback"
    rows = store.conn.execute(sql, ()).fetchall()
    assert sorted(tuple(r) for r in rows) == [
        ("e1", "a", "click", None, 1),
        ("e1", "b", "purchase", 12.5, 0),
        ("waiting", "a", "click", None, 0),
    ]


def test_feedback_defaults_to_the_first_chosen_action(store: LogStore) -> None:
    store.record_decision(decision(slots=2))
    assert store.record_feedback("e1", "click", None).action_id == "a"
    assert store.record_feedback("e1", "click", None, action_id="b").action_id == "b"


def test_feedback_for_an_offer_not_shown_is_refused(store: LogStore) -> None:
    store.record_decision(decision())
    with pytest.raises(UnknownAction):
        store.record_feedback("e1", "click", None, action_id="c")


def test_feedback_for_an_unknown_event_is_refused(store: LogStore) -> None:
    with pytest.raises(UnknownEvent):
        store.record_feedback("missing", "click", None)


def test_feedback_never_moves_the_end_of_the_reward_window(store: LogStore) -> None:
    # An answered decision and a silent one close alike, so numbers that use only
    # closed decisions are not inflated by early feedback.
    original = decision(window=600)
    store.record_decision(original)
    store.record_feedback("e1", "click", None)
    assert store.find_decision("e1").closes_at == original.closes_at  # type: ignore[union-attr]


def test_due_events_carry_only_the_feedback_received_by_then(store: LogStore) -> None:
    clock = FakeClock(1000.0)
    store.clock = clock
    store.record_decision(decision(created_at=1000.0, window=600))
    store.record_feedback("e1", "click", None)
    clock.now = 1005.0
    store.record_feedback("e1", "purchase", 40.0)
    [(event, _)] = store.closed_events(closed_before=1001.0)
    assert [f.signal for f in event.feedback] == ["click"]


def test_a_signal_after_the_first_learning_is_handed_out_as_a_correction(store: LogStore) -> None:
    clock = FakeClock(1000.0)
    store.clock = clock
    store.record_decision(decision(created_at=1000.0, window=600, learn_in=1.0))
    assert store.closed_events(closed_before=1000.5) == []  # not due yet
    [(event, _)] = store.closed_events(closed_before=1001.0)
    assert event.feedback == ()  # learned silent at its first horizon
    with store.conn:
        store.mark_learned(store.conn, {"e1": ()}, "v2")
    assert store.correction_events(closed_before=2000.0) == []
    clock.now = 1100.0
    store.record_feedback("e1", "click", None)
    [(corrected, learned)] = store.correction_events(closed_before=2000.0)
    assert [f.signal for f in corrected.feedback] == ["click"] and learned == ()
    assert store.correction_events(closed_before=2000.0, skip={"e1"}) == []
    with store.conn:
        store.mark_learned(store.conn, {"e1": tuple(f.log_id for f in corrected.feedback)}, "v3")
    assert store.correction_events(closed_before=2000.0) == []
    clock.now = 1700.0  # after the window: kept, never learned
    assert not store.record_feedback("e1", "purchase", 10.0).on_time
    assert store.correction_events(closed_before=3000.0) == []
    assert store.find_decision("e1") is not None
    learned_in = store.conn.execute("SELECT learned_in FROM decisions").fetchone()[0]
    assert learned_in == "v2"  # the version that first learned it


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_feedback_after_the_event_closed_is_kept_but_not_learnable(store: LogStore) -> None:
    store.record_decision(decision(window=-1))  # already closed
    receipt = store.record_feedback("e1", "click", None)
    assert not receipt.on_time
    [(event, _)] = store.closed_events(closed_before=time.time())
    assert event.feedback == ()


def test_due_events_page_in_learning_order_and_skip_those_not_due(store: LogStore) -> None:
    now = time.time()
    for i in range(5):
        store.record_decision(decision(f"e{i}", created_at=now - 100 + i, window=10, learn_in=1.0))
    store.record_decision(decision("later", created_at=now, window=600, learn_in=1.0))
    first = store.closed_events(closed_before=now, limit=3)
    rest = store.closed_events(closed_before=now, after=first[-1][1], limit=3)
    assert [e.event_id for e, _ in first + rest] == [f"e{i}" for i in range(5)]


def test_raw_rewards_with_different_values_are_both_kept(store: LogStore) -> None:
    store.record_decision(decision())
    store.record_feedback("e1", "reward", 0.2)
    store.record_feedback("e1", "reward", 0.7)
    store.record_feedback("e1", "reward", 0.7)
    values = [r[0] for r in store.conn.execute("SELECT value FROM feedback ORDER BY id")]
    assert values == [0.2, 0.7]


def _writer(location: str, worker: int, count: int) -> None:
    store = LogStore(_location(location))
    for i in range(count):
        event_id = f"w{worker}-{i}"
        store.record_decision(decision(event_id))
        store.record_feedback(event_id, "click", None)
        store.record_feedback(event_id, "click", None)  # a retry: must not duplicate
    store.close()


def _location(text: str) -> Path | DatabaseUrl:
    """A log's location passed to a spawned process as text (a path or a postgresql:// URL)."""
    return parse_database_url(text, Path("unused")) if text.startswith("postgresql://") else Path(text)


def location_text(store: LogStore) -> str:
    return store.database.conninfo or str(store.path)


@pytest.mark.slow
def test_concurrent_writer_processes_lose_and_duplicate_nothing(store: LogStore) -> None:
    processes, per_worker = 4, 150
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_writer, args=(location_text(store), w, per_worker)) for w in range(processes)
    ]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=120)
    assert [p.exitcode for p in workers] == [0] * processes
    decisions = store.conn.execute("SELECT COUNT(*) FROM decisions").fetchone()[0]
    feedback = store.conn.execute("SELECT COUNT(*) FROM feedback").fetchone()[0]
    assert decisions == feedback == processes * per_worker


def test_a_sqlite_log_is_in_wal_mode(tmp_path: Path) -> None:
    store = LogStore(tmp_path / "log.db")
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    store.close()
    conn = sqlite3.connect(tmp_path / "log.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_marking_more_events_than_one_statement_holds_marks_each_once_with_its_feedback(
    store: LogStore,
) -> None:
    """mark_learned works in IN lists of 500: 1,201 events span three, on either backend."""
    ids = [f"m{i:04d}" for i in range(1201)]
    now = time.time()
    for event_id in ids:
        store.record_decision(decision(event_id, created_at=now, window=600))
    clicked = ids[::100]
    for event_id in clicked:
        store.record_feedback(event_id, "click", None)
    rows = {r[0]: r[1] for r in store.conn.execute("SELECT event_id, id FROM feedback").fetchall()}
    # half of the clicked events name the feedback rows they read, the other half take all
    learned = {e: ((rows[e],) if k % 2 else None) for k, e in enumerate(clicked)}
    learned |= {e: () for e in ids if e not in learned}
    del learned["m1200"]  # left for the next version
    with store.conn:
        store.mark_learned(store.conn, learned, "v2")
    with store.conn:
        store.mark_learned(store.conn, {"m0000": (), "m1200": ()}, "v3")  # a version keeps its events
    marks = dict(store.conn.execute("SELECT event_id, learned_in FROM decisions").fetchall())
    assert len(marks) == 1201
    assert {e for e, v in marks.items() if v == "v2"} == set(ids) - {"m1200"}
    assert marks["m1200"] == "v3"
    feedback_marks = dict(store.conn.execute("SELECT event_id, learned_in FROM feedback").fetchall())
    assert len(feedback_marks) == len(clicked) == 13
    assert feedback_marks.pop("m1200") is None  # its marking named no feedback rows
    assert set(feedback_marks.values()) == {"v2"}
