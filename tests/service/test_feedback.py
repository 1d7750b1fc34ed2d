from __future__ import annotations

import time

from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import rank_body


def test_feedback_is_recorded_once_and_says_it_will_be_learned(client: FlaskClient) -> None:
    event_id = client.post("/v1/rank", json=rank_body()).get_json()["event_id"]
    first = client.post(f"/v1/events/{event_id}/feedback", json={"signal": "add_to_cart"})
    again = client.post(f"/v1/events/{event_id}/feedback", json={"signal": "add_to_cart"})
    assert first.status_code == again.status_code == 200
    assert first.get_json()["duplicate"] is False and again.get_json()["duplicate"] is True
    assert first.get_json()["learnable"] is True


def test_feedback_for_an_unknown_event_is_404(client: FlaskClient) -> None:
    response = client.post("/v1/events/never-ranked/feedback", json={"signal": "click"})
    assert response.status_code == 404
    assert response.get_json()["error"] == "unknown_event"


def test_feedback_naming_an_offer_not_shown_is_422(client: FlaskClient) -> None:
    answer = client.post("/v1/rank", json=rank_body(excluded_actions=["bag"])).get_json()
    response = client.post(
        f"/v1/events/{answer['event_id']}/feedback", json={"signal": "click", "action_id": "bag"}
    )
    assert response.status_code == 422
    assert response.get_json()["details"][0]["field"] == "action_id"


def test_feedback_can_name_the_offer_in_any_slot(client: FlaskClient) -> None:
    answer = client.post("/v1/rank", json=rank_body(slots=2)).get_json()
    second = answer["chosen"][1]
    response = client.post(
        f"/v1/events/{answer['event_id']}/feedback", json={"signal": "click", "action_id": second}
    )
    assert response.get_json()["action_id"] == second


def test_raw_reward_is_recorded(client: FlaskClient, app: Flask) -> None:
    event_id = client.post("/v1/rank", json=rank_body()).get_json()["event_id"]
    response = client.post(f"/v1/events/{event_id}/reward", json={"value": 0.42})
    assert response.status_code == 200 and response.get_json()["signal"] == "reward"
    row = app.extensions["xsell"].store.conn.execute("SELECT signal, value FROM feedback").fetchone()
    assert tuple(row) == ("reward", 0.42)


def test_feedback_after_the_window_is_recorded_but_not_learnable(client: FlaskClient, app: Flask) -> None:
    event_id = client.post("/v1/rank", json=rank_body()).get_json()["event_id"]
    store = app.extensions["xsell"].store
    store.conn.execute("UPDATE decisions SET closes_at = ? WHERE event_id = ?", (time.time() - 1, event_id))
    response = client.post(f"/v1/events/{event_id}/feedback", json={"signal": "purchase", "value": 30})
    assert response.status_code == 200
    assert response.get_json()["learnable"] is False
    assert store.conn.execute("SELECT on_time FROM feedback").fetchone()[0] == 0
