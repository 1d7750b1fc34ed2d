"""Every client mistake gets a 4xx with a JSON body naming the problem; nothing is lost."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import rank_body

A = {"id": "a"}


@pytest.mark.parametrize(
    ("body", "status", "error", "field"),
    [
        ({"actions": []}, 422, "validation_error", "actions"),
        ({}, 422, "validation_error", "actions"),
        ({"actions": [A, A]}, 422, "validation_error", "body"),
        ({"actions": [{"id": f"a{i}"} for i in range(51)]}, 422, "validation_error", "actions"),
        ({"actions": [{"id": ""}]}, 422, "validation_error", "actions.0.id"),
        ({"actions": [A], "slots": 0}, 422, "validation_error", "slots"),
        ({"actions": [A], "slots": 11}, 422, "validation_error", "slots"),
        ({"actions": [A], "slots": "two"}, 422, "validation_error", "slots"),
        ({"actions": [A], "excluded_actions": ["zzz"]}, 422, "validation_error", "body"),
        ({"actions": [A], "excluded_actions": ["a"]}, 422, "validation_error", "body"),
        ({"actions": [A], "context": {"u": {"x": {"nested": 1}}}}, 422, "validation_error", "context.u.x"),
        ({"actions": [A], "context": {"u": {"x": [1, 2]}}}, 422, "validation_error", "context.u.x"),
        ({"actions": [A], "context": {"u": {"x": "y" * 300}}}, 422, "validation_error", "context.u.x"),
        (
            {"actions": [A], "context": {"u": {f"f{i}": 1 for i in range(129)}}},
            422,
            "validation_error",
            "context.u",
        ),
        ({"actions": [A], "context": {f"n{i}": {} for i in range(33)}}, 422, "validation_error", "context"),
        ({"actions": [A], "context": {"u": "flat"}}, 422, "validation_error", "context.u"),
        ({"actions": [A], "event_id": "has space"}, 422, "validation_error", "event_id"),
        ({"actions": [A], "event_id": "x" * 129}, 422, "validation_error", "event_id"),
        ({"actions": [A], "unexpected": 1}, 422, "validation_error", "unexpected"),
        ([1, 2], 422, "validation_error", "body"),
    ],
)
def test_rank_rejects_bad_bodies(
    client: FlaskClient, body: object, status: int, error: str, field: str
) -> None:
    response = client.post("/v1/rank", json=body)
    assert response.status_code == status
    payload = response.get_json()
    assert payload["error"] == error
    assert field in [d["field"] for d in payload["details"]]


@pytest.mark.parametrize(
    "raw",
    [
        b"{",
        b"",
        b"not json",
        b'{"actions": [{"id": "a", "features": {"u": {"x": NaN}}}]}',
        b'{"actions": [{"id": "a", "features": {"u": {"x": Infinity}}}]}',
    ],
)
def test_malformed_json_and_non_finite_numbers_are_rejected(client: FlaskClient, raw: bytes) -> None:
    response = client.post("/v1/rank", data=raw, content_type="application/json")
    assert response.status_code in (400, 422)
    assert response.get_json()["error"] in ("invalid_json", "validation_error")


def test_numbers_too_large_for_a_float_are_rejected(client: FlaskClient) -> None:
    raw = b'{"actions": [{"id": "a", "features": {"u": {"x": 1e999}}}]}'
    response = client.post("/v1/rank", data=raw, content_type="application/json")
    assert response.status_code == 422
    assert response.get_json()["details"][0]["field"] == "actions.0.features.u.x"


def test_oversized_body_is_413(client: FlaskClient, app: Flask) -> None:
    limit = app.config["MAX_CONTENT_LENGTH"]
    raw = b'{"actions": [{"id": "' + b"x" * limit + b'"}]}'
    response = client.post("/v1/rank", data=raw, content_type="application/json")
    assert response.status_code == 413
    assert response.get_json()["error"] == "request_entity_too_large"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"signal": "like"}, "signal"),
        ({}, "signal"),
        ({"signal": "purchase", "value": -5}, "value"),
        ({"signal": "click", "action_id": ""}, "action_id"),
        ({"signal": "click", "extra": True}, "extra"),
    ],
)
def test_feedback_rejects_bad_bodies(client: FlaskClient, body: object, field: str) -> None:
    client.post("/v1/rank", json=rank_body(event_id="e"))
    response = client.post("/v1/events/e/feedback", json=body)
    assert response.status_code == 422
    assert field in [d["field"] for d in response.get_json()["details"]]


def test_reward_rejects_non_finite_and_missing_values(client: FlaskClient) -> None:
    client.post("/v1/rank", json=rank_body(event_id="e"))
    for raw in (b'{"value": NaN}', b"{}", b'{"value": "high"}'):
        response = client.post("/v1/events/e/reward", data=raw, content_type="application/json")
        assert response.status_code == 422, raw


def test_unknown_routes_and_methods_answer_json(client: FlaskClient) -> None:
    missing = client.get("/v1/nothing")
    wrong_method = client.get("/v1/rank")
    assert missing.status_code == 404 and missing.get_json()["error"] == "not_found"
    assert wrong_method.status_code == 405 and wrong_method.get_json()["error"] == "method_not_allowed"


def test_bad_requests_lose_nothing_already_accepted(client: FlaskClient, app: Flask) -> None:
    client.post("/v1/rank", json=rank_body(event_id="kept"))
    client.post("/v1/events/kept/feedback", json={"signal": "click"})
    client.post("/v1/rank", json={"actions": []})
    client.post("/v1/rank", json=rank_body(event_id="kept", slots=2))
    client.post("/v1/events/kept/feedback", json={"signal": "nope"})
    store = app.extensions["xsell"].store
    assert store.find_decision("kept") is not None
    assert store.conn.execute("SELECT COUNT(*) FROM feedback").fetchone()[0] == 1
    assert store.conn.execute("SELECT COUNT(*) FROM decisions").fetchone()[0] == 1
