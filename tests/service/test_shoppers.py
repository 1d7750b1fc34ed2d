"""Shopper controls and pacing through the HTTP API, on the demo store."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from logs.evaluation_store import ImportanceStore
from policies.base import LoggedEvent
from policies.learning.rewards import RewardRules
from service.access_log import redact
from service.resources import shopper_key
from tests.conftest import demo_shop

CAMERA = [{"sku": "camera-01", "qty": 1}]


@pytest.fixture
def shop(tmp_path) -> Iterator[Flask]:
    app = demo_shop(tmp_path, pacing_cooldown_seconds=3600, pacing_session_cap=4)
    yield app
    app.extensions["xsell"].store.close()


@pytest.fixture
def client(shop: Flask) -> FlaskClient:
    return shop.test_client()


def offers(client: FlaskClient, shopper: str = "alice", **body) -> dict:
    response = client.post("/v1/offers", json={"cart": CAMERA, "shopper_id": shopper, **body})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_preferences_default_then_apply_from_the_next_request(client) -> None:
    assert client.get("/v1/shoppers/alice/preferences").get_json() == {
        "muted_categories": [],
        "frequency": "normal",
        "personalised": True,
    }
    client.post("/v1/shoppers/alice/preferences", json={"muted_categories": ["tripod", "camera_bag"]})
    for _ in range(3):
        answer = offers(client, max_offers=1)["offers"]
        assert len(answer) == 1  # an empty answer would pass the check below
        assert answer[0]["category"] not in {"tripod", "camera_bag"}
    client.post("/v1/shoppers/alice/preferences", json={"frequency": "off"})
    assert offers(client)["no_offer"] == "shopper_turned_offers_off"
    assert offers(client, shopper="bob")["offers"]  # other shoppers are unaffected


def test_muting_a_family_mutes_every_kind_in_it(client) -> None:
    # every complement of a camera is in the photo family: three of them before muting, none after
    before = offers(client, shopper="bob", max_offers=3)["offers"]
    assert len(before) == 3
    assert {o["category"] for o in before} <= {"tripod", "memory_card", "camera_bag", "camera_battery"}
    client.post("/v1/shoppers/alice/preferences", json={"muted_categories": ["photo"]})
    answer = offers(client, max_offers=3)
    assert answer["offers"] == [] and answer["no_offer"] == "nothing_relevant"


def test_opting_out_of_personalisation_logs_nothing_about_the_cart(shop, client) -> None:
    client.post("/v1/shoppers/alice/preferences", json={"personalised": False})
    answer = offers(client, device="mobile", search="pro camera")
    record = shop.extensions["xsell"].store.find_decision(answer["event_id"])
    assert record.context == {"session": {"stage": "browse"}}
    assert len(answer["offers"]) == 1  # max_offers defaults to 1; an empty answer must not pass
    assert all(o["reason"].startswith("Popular with shoppers in") for o in answer["offers"])
    assert all(o["sku"] != "camera-01" for o in answer["offers"])  # still never what is in the cart


def test_a_dismissal_starts_a_cool_down_and_the_cap_limits_a_session(client) -> None:
    answer = offers(client, max_offers=2)
    assert len(answer["offers"]) == 2
    sku = answer["offers"][0]["sku"]
    client.post(f"/v1/events/{answer['event_id']}/feedback", json={"signal": "dismiss", "action_id": sku})
    assert offers(client)["no_offer"] == "cooling_down_after_1_dismissals"
    other = [offers(client, shopper="carol", max_offers=2) for _ in range(3)]
    assert [len(a["offers"]) for a in other] == [2, 2, 0]  # cap of 4 per session
    assert other[2]["no_offer"] == "session_cap_reached"


def test_erasure_removes_everything_and_keeps_the_decision_under_a_new_id(shop, client) -> None:
    client.post("/v1/shoppers/alice/preferences", json={"frequency": "fewer"})
    answer = offers(client)
    erased = client.delete("/v1/shoppers/alice").get_json()
    assert erased["erased"] and erased["rows_removed"]["shoppers"] == 1
    assert erased["rows_removed"]["shopper_events"] >= 1 and erased["rows_removed"]["pacing_log"] >= 1
    assert client.get("/v1/shoppers/alice/preferences").get_json()["frequency"] == "normal"
    dump = "\n".join(shop.extensions["xsell"].store.conn.iterdump())
    assert "alice" not in dump  # neither the raw id ...
    assert shopper_key(shop.extensions["xsell"], "alice") not in dump  # ... nor its key remains
    assert answer["event_id"] not in dump  # the decision stays, under an id nobody was given
    assert shop.extensions["xsell"].store.conn.execute("SELECT count(*) FROM decisions").fetchone()[0] == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"frequency": "sometimes"}, "frequency"),
        ({"muted_categories": "tripod"}, "muted_categories"),
        ({"muted_categories": [""]}, "muted_categories.0"),
        ({"personalised": "no"}, "personalised"),
        ({"other": 1}, "other"),
    ],
)
def test_bad_preferences_get_a_422_naming_the_field_and_change_nothing(client, body, field) -> None:
    response = client.post("/v1/shoppers/alice/preferences", json=body)
    assert response.status_code == 422
    assert any(d["field"] == field for d in response.get_json()["details"])
    assert client.get("/v1/shoppers/alice/preferences").get_json()["frequency"] == "normal"


def _shop_and_buy(client: FlaskClient, shopper: str, value: float) -> str:
    """Ask for offers with a search and a client-chosen event id, click and buy the first one."""
    event_id = f"{shopper}-cart-1"
    answer = offers(
        client,
        shopper=shopper,
        event_id=event_id,
        search=f"{shopper} zanzibar",
        device="mobile",
        max_offers=2,
    )
    sku = answer["offers"][0]["sku"]
    for signal in ({"signal": "click"}, {"signal": "purchase", "value": value}):
        response = client.post(f"/v1/events/{event_id}/feedback", json={**signal, "action_id": sku})
        assert response.status_code == 200, response.get_json()
    return event_id


def _replay(store) -> dict[float, LoggedEvent]:
    """Every decision the evaluator would read, by when it was made (event ids change on erasure)."""
    page = store.replay_events(closed_before=time.time() + 3600, limit=1000)
    return {event.created_at: event for event, _ in page}


def test_erasing_one_shopper_anonymises_their_decisions_and_keeps_everyone_else(shop, client) -> None:
    res = shop.extensions["xsell"]
    client.post("/v1/shoppers/bob/preferences", json={"frequency": "fewer"})
    alice_event = _shop_and_buy(client, "alice", 61.37)
    bob_event = _shop_and_buy(client, "bob", 61.37)
    bob_before = res.store.find_decision(bob_event)
    before = _replay(res.store)
    reports = ImportanceStore(res.store)
    scores = [
        {"namespace": "search", "featureName": "tokens=alice", "score": 0.3},
        {"namespace": "cart", "featureName": "categories=camera", "score": 0.2},
    ]
    report = {"id": "r1", "name": "r1", "start_time": 0, "end_time": 2e9, "created_at": 0}
    reports.create({**report, "scores": scores})
    assert len(before) == 2

    erased = client.delete("/v1/shoppers/alice").get_json()

    assert erased["decisions_anonymised"] == 1
    after = _replay(res.store)
    assert after.keys() == before.keys()  # the evaluator still reads every decision
    rules = RewardRules()
    for made_at, event in after.items():
        old = before[made_at]
        assert (event.actions, event.probabilities, event.choices) == (
            old.actions,
            old.probabilities,
            old.choices,
        )
        assert [f.signal for f in event.feedback] == [f.signal for f in old.feedback] != []
        sku = event.choices[0].action_id
        assert abs(rules.reward_for(event.feedback, sku) - rules.reward_for(old.feedback, sku)) < 0.01
    alice = next(e for e in after.values() if e.event_id != bob_event)
    assert alice.event_id != alice_event and res.store.find_decision(alice_event) is None
    assert alice.context == {"session": {"stage": "browse"}}  # what an opted-out shopper's decision keeps
    assert res.store.find_decision(alice.event_id).request_sha256 == ""
    stored = res.store.conn.execute(
        "SELECT signal, value FROM feedback WHERE event_id = ? ORDER BY id", (alice.event_id,)
    ).fetchall()
    assert [tuple(row) for row in stored] == [("click", None), ("purchase", 61.0)]  # order value rounded
    assert reports.find("r1")["scores"] == scores[1:]  # a report keeps no search word of hers
    # Bob: untouched decision, feedback, preferences and pacing history.
    assert res.store.find_decision(bob_event) == bob_before
    assert after[bob_before.created_at].feedback == before[bob_before.created_at].feedback
    assert client.get("/v1/shoppers/bob/preferences").get_json()["frequency"] == "fewer"
    bob_key = shopper_key(res, "bob")
    assert res.shoppers.recent_events(bob_key, since=0) != []
    # A retry of alice's old request is now a new decision: nothing links the two.
    assert client.post(f"/v1/events/{alice_event}/feedback", json={"signal": "click"}).status_code == 404


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('"DELETE /v1/shoppers/alice HTTP/1.1" 200', '"DELETE /v1/shoppers/- HTTP/1.1" 200'),
        ("GET /v1/shoppers/Zo%C3%AB%20Q%2Fx/preferences?a=1", "GET /v1/shoppers/-/preferences?a=1"),
        ("POST //V1//Shoppers/bob/preferences", "POST //V1//Shoppers/-/preferences"),
        ("Error handling request /v1/shoppers/bob", "Error handling request /v1/shoppers/-"),
        ("POST /v1/offers 200", "POST /v1/offers 200"),
    ],
)
def test_log_lines_never_hold_a_shopper_id(line, expected) -> None:
    assert redact(line) == expected
