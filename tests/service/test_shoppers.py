"""Shopper controls and pacing through the HTTP API, on the demo store."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

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
        categories = {o["category"] for o in offers(client, max_offers=1)["offers"]}
        assert not categories & {"tripod", "camera_bag"}
    client.post("/v1/shoppers/alice/preferences", json={"frequency": "off"})
    assert offers(client)["no_offer"] == "shopper_turned_offers_off"
    assert offers(client, shopper="bob")["offers"]  # other shoppers are unaffected


def test_muting_a_family_mutes_every_kind_in_it(client) -> None:
    client.post("/v1/shoppers/alice/preferences", json={"muted_categories": ["photo"]})
    answer = offers(client, max_offers=3)
    assert all(
        o["category"] not in {"tripod", "memory_card", "camera_bag", "camera_battery"}
        for o in answer["offers"]
    )


def test_opting_out_of_personalisation_logs_nothing_about_the_cart(shop, client) -> None:
    client.post("/v1/shoppers/alice/preferences", json={"personalised": False})
    answer = offers(client, device="mobile", search="pro camera")
    record = shop.extensions["xsell"].store.find_decision(answer["event_id"])
    assert record.context == {"session": {"stage": "browse"}}
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


def test_erasure_removes_everything_and_no_decision_carries_the_shopper(shop, client) -> None:
    client.post("/v1/shoppers/alice/preferences", json={"frequency": "fewer"})
    answer = offers(client)
    erased = client.delete("/v1/shoppers/alice").get_json()
    assert erased["erased"] and erased["rows_removed"]["shoppers"] == 1
    assert erased["rows_removed"]["shopper_events"] >= 1 and erased["rows_removed"]["pacing_log"] >= 1
    assert client.get("/v1/shoppers/alice/preferences").get_json()["frequency"] == "normal"
    dump = "\n".join(shop.extensions["xsell"].store.conn.iterdump())
    assert "alice" not in dump  # neither the raw id ...
    assert shopper_key(shop.extensions["xsell"], "alice") not in dump  # ... nor its key remains
    assert answer["event_id"] in dump  # the decision itself stays, anonymous


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
