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


# -- per-slot controls ---------------------------------------------------------------------

SLOTS = [
    {"id": "hero", "excluded_actions": ["bag"], "baseline_action": "memory_card"},
    {"id": "side", "excluded_actions": ["tripod"]},
]


def test_each_slot_honours_its_own_exclusions_and_is_named_in_the_answer(
    client: FlaskClient, app: Flask
) -> None:
    answers = [
        client.post("/v1/rank", json=rank_body(event_id=f"s{i}", slots=SLOTS)).get_json() for i in range(30)
    ]
    assert answers
    for answer in answers:
        assert [c["slot_id"] for c in answer["choices"]] == ["hero", "side"]
        hero, side = answer["chosen"]
        assert hero != "bag" and side != "tripod" and hero != side
        # the answer's ranking is the distribution the first slot was drawn from
        first = {r["id"]: r["probability"] for r in answer["ranking"]}
        assert first["bag"] == 0.0 and sum(first.values()) == pytest.approx(1.0)
        assert first[hero] == answer["choices"][0]["probability"]
    logged = app.extensions["xsell"].store.find_decision("s0")
    assert logged.slot_ids == ("hero", "side")
    assert logged.slot_excluded == (frozenset({"bag"}), frozenset({"tripod"}))
    assert logged.baseline == ("memory_card", None)


def test_a_number_of_slots_is_the_same_request_as_that_many_slots_without_controls(
    client: FlaskClient,
) -> None:
    first = client.post("/v1/rank", json=rank_body(event_id="same", slots=2))
    retry = client.post("/v1/rank", json=rank_body(event_id="same", slots=[{}, {}]))
    assert first.status_code == retry.status_code == 200
    assert first.get_json() == retry.get_json()
    assert "slot_id" not in first.get_json()["choices"][0]


def test_apprentice_mode_serves_each_slots_baseline(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from service.app import create_app
    from tests.conftest import make_settings

    app = create_app(make_settings(tmp_path, learning_mode="apprentice"))
    try:
        answer = app.test_client().post("/v1/rank", json=rank_body(slots=SLOTS)).get_json()
    finally:
        app.extensions["xsell"].store.close()
    # hero: its baseline; side: no baseline, tripod banned, so the first it may show left
    assert answer["chosen"] == ["memory_card", "bag"]
    assert [c["probability"] for c in answer["choices"]] == [1.0, 1.0]


@pytest.mark.parametrize(
    ("slots", "message"),
    [
        ([{"excluded_actions": ["zzz"]}], "slots[0].excluded_actions names ids not in actions: zzz"),
        ([{}, {"excluded_actions": ["tripod", "memory_card", "bag"]}], "slots[1] excludes every action"),
        ([{"baseline_action": "zzz"}], "slots[0].baseline_action must be an action this slot may show"),
        ([{"baseline_action": "bag", "excluded_actions": ["bag"]}], "slots[0].baseline_action"),
        ([{"id": "a"}, {}], "name every slot (id) or none"),
        ([{"id": "a"}, {"id": "a"}], "slot ids must be unique"),
        ([{}] * 11, "at most 10"),
        ([], "at least 1"),
        (True, "a number of slots"),
        (2.5, "a number of slots"),
    ],
)
def test_bad_slot_controls_get_a_422_naming_slots_and_log_nothing(
    client: FlaskClient, app: Flask, slots: object, message: str
) -> None:
    response = client.post("/v1/rank", json=rank_body(event_id="bad", slots=slots))
    assert response.status_code == 422
    details = response.get_json()["details"]
    assert details
    assert any(d["field"] == "slots" and message in d["message"] for d in details), details
    assert app.extensions["xsell"].store.find_decision("bad") is None


def test_a_baseline_excluded_from_the_decision_is_refused(client: FlaskClient) -> None:
    body = rank_body(excluded_actions=["bag"], slots=[{"baseline_action": "bag"}])
    response = client.post("/v1/rank", json=body)
    assert response.status_code == 422
    assert response.get_json()["details"][0]["field"] == "slots"


def test_an_unknown_slot_field_is_named(client: FlaskClient) -> None:
    response = client.post("/v1/rank", json=rank_body(slots=[{"excluded": ["bag"]}]))
    assert response.status_code == 422
    assert [d["field"] for d in response.get_json()["details"]] == ["slots.0.excluded"]
