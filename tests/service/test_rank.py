from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import rank_body


def test_rank_answers_chosen_offer_and_full_distribution(client: FlaskClient) -> None:
    answer = client.post("/v1/rank", json=rank_body()).get_json()
    probabilities = {r["id"]: r["probability"] for r in answer["ranking"]}
    assert set(probabilities) == {"tripod", "memory_card", "bag"}
    assert sum(probabilities.values()) == pytest.approx(1.0)
    assert answer["chosen"] == [answer["choices"][0]["action_id"]]
    assert answer["ranking"][0]["id"] == answer["chosen"][0]
    assert answer["choices"][0]["probability"] == probabilities[answer["chosen"][0]]
    assert answer["model_version"] == "v1"
    assert len(answer["event_id"]) == 32


def test_logged_propensities_are_the_served_ones(client: FlaskClient, app: Flask) -> None:
    answer = client.post("/v1/rank", json=rank_body(event_id="ev-1", slots=2)).get_json()
    logged = app.extensions["xsell"].store.find_decision("ev-1")
    served = {r["id"]: r["probability"] for r in answer["ranking"]}
    assert dict(zip([a.id for a in logged.actions], logged.probabilities, strict=True)) == served
    assert [(c.action_id, c.probability) for c in logged.choices] == [
        (c["action_id"], c["probability"]) for c in answer["choices"]
    ]
    assert logged.model_version == answer["model_version"]


def test_excluded_actions_are_never_chosen(client: FlaskClient) -> None:
    for i in range(30):
        answer = client.post(
            "/v1/rank", json=rank_body(event_id=f"x{i}", excluded_actions=["tripod"])
        ).get_json()
        assert answer["chosen"] != ["tripod"]
        excluded = next(r for r in answer["ranking"] if r["id"] == "tripod")
        assert excluded == {"id": "tripod", "probability": 0.0, "excluded": True}


def test_multi_slot_answers_distinct_offers_each_with_its_propensity(client: FlaskClient) -> None:
    answer = client.post("/v1/rank", json=rank_body(slots=3)).get_json()
    assert len(set(answer["chosen"])) == 3
    assert [c["slot"] for c in answer["choices"]] == [1, 2, 3]
    assert answer["choices"][-1]["probability"] == 1.0  # the last remaining offer


def test_more_slots_than_eligible_offers_answers_fewer(client: FlaskClient) -> None:
    answer = client.post("/v1/rank", json=rank_body(slots=5, excluded_actions=["bag"])).get_json()
    assert sorted(answer["chosen"]) == ["memory_card", "tripod"]


def test_retrying_the_same_request_returns_the_same_answer(client: FlaskClient) -> None:
    first = client.post("/v1/rank", json=rank_body(event_id="retry-me"))
    second = client.post("/v1/rank", json=rank_body(event_id="retry-me"))
    assert first.status_code == second.status_code == 200
    assert first.get_json() == second.get_json()


def test_reusing_an_event_id_for_another_request_is_a_conflict(client: FlaskClient) -> None:
    client.post("/v1/rank", json=rank_body(event_id="taken"))
    response = client.post("/v1/rank", json=rank_body(event_id="taken", slots=2))
    assert response.status_code == 409
    assert response.get_json()["error"] == "event_conflict"


def test_empty_context_is_allowed(client: FlaskClient) -> None:
    response = client.post("/v1/rank", json={"actions": [{"id": "only"}]})
    assert response.status_code == 200
    assert response.get_json()["chosen"] == ["only"]


def test_event_ids_with_slashes_and_unicode_work_end_to_end(client: FlaskClient) -> None:
    client.post("/v1/rank", json=rank_body(event_id="shop/42/é"))
    response = client.post("/v1/events/shop%2F42%2F%C3%A9/feedback", json={"signal": "click"})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["event_id"] == "shop/42/é"
