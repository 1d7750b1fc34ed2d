"""ShopperStore on SQLite and PostgreSQL (tests/logs/conftest.py): preferences, pacing, erasure."""

from __future__ import annotations

from logs.shopper_store import Preferences, ShopperStore
from logs.store import LogStore
from tests.logs.helpers import decision


def test_preferences_are_replaced_whole(store: LogStore) -> None:
    shoppers = ShopperStore(store)
    assert shoppers.preferences("k") == Preferences()
    shoppers.save_preferences("k", Preferences(("bags", "audio", "bags"), "fewer", False))
    shoppers.save_preferences("k", Preferences(("audio",), "off", True))
    assert shoppers.preferences("k") == Preferences(("audio",), "off", True)


def test_shown_offers_and_answers_become_pacing_events(store: LogStore) -> None:
    shoppers = ShopperStore(store)
    store.record_decision(decision("e1", created_at=100.0))
    shoppers.record_shown("k", "e1", [("a", "tripod"), ("b", "bag")], verdict="offer", reason="ok")
    shoppers.record_response("e1", "b", "dismiss")
    shoppers.record_response("e1", "zzz", "click")  # never shown: nothing to pace
    shoppers.record_verdict("k", "none", "cool_down")
    events = shoppers.recent_events("k", since=0.0)
    kinds = sorted((e.kind, e.category) for e in events)
    assert kinds == [("dismiss", "bag"), ("shown", "bag"), ("shown", "tripod")]


def test_erasure_removes_the_shopper_and_unlinks_their_decisions(store: LogStore) -> None:
    shoppers = ShopperStore(store)
    store.record_decision(decision("theirs", created_at=100.0, window=1e9, slots=2))
    store.record_decision(decision("other", created_at=100.0, window=1e9, fingerprint="other"))
    store.record_feedback("theirs", "purchase", 1234.5, action_id="a")
    store.record_feedback("theirs", "click", None, action_id="b")
    shoppers.save_preferences("k", Preferences(("audio",)))
    shoppers.record_shown("k", "theirs", [("a", "tripod")], verdict="offer", reason="ok")
    shoppers.record_response("theirs", "a", "purchase")

    erasure = shoppers.erase("k")

    assert erasure.decisions_anonymised == 1
    assert erasure.rows_removed == {"shoppers": 1, "shopper_events": 2, "pacing_log": 1}
    assert store.find_decision("theirs") is None and store.find_decision("other") is not None
    rows = store.conn.execute("SELECT event_id, request_sha256 FROM decisions ORDER BY event_id").fetchall()
    new_id = next(r["event_id"] for r in rows if r["event_id"] != "other")
    assert next(r["request_sha256"] for r in rows if r["event_id"] == new_id) == ""
    moved = store.conn.execute(
        "SELECT signal, value FROM feedback WHERE event_id = ? ORDER BY signal", (new_id,)
    ).fetchall()
    assert [(r["signal"], r["value"]) for r in moved] == [("click", None), ("purchase", 1200.0)]
    assert store.find_decision(new_id).context == {}  # type: ignore[union-attr]
    assert shoppers.preferences("k") == Preferences() and shoppers.recent_events("k", since=0.0) == []
    assert shoppers.erase("k").decisions_anonymised == 0  # idempotent
