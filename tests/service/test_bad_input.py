"""Every client mistake gets a 4xx with a JSON body naming the problem; nothing is lost."""

from __future__ import annotations

import io

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


# -- content types: a page on another site can post these without a CORS preflight --

FEEDBACK = b'{"signal": "click"}'


@pytest.mark.parametrize(
    ("content_type", "raw"),
    [
        ("text/plain", FEEDBACK),
        ("text/plain;charset=UTF-8", FEEDBACK),
        ("application/x-www-form-urlencoded", b"signal=click"),
        (
            "multipart/form-data; boundary=x",
            b'--x\r\nContent-Disposition: form-data; name="signal"\r\n\r\nclick\r\n--x--',
        ),
        (None, FEEDBACK),  # fetch() with a Blob body sends no type at all
        ("application/json; charset=latin-1", FEEDBACK),
        ("application/jsonp", FEEDBACK),
    ],
)
def test_feedback_not_sent_as_json_is_415_and_records_nothing(
    client: FlaskClient, app: Flask, content_type: str | None, raw: bytes
) -> None:
    client.post("/v1/rank", json=rank_body(event_id="shown"))
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = client.post("/v1/events/shown/feedback", data=raw, headers=headers)
    assert response.status_code == 415, response.get_data(as_text=True)
    payload = response.get_json()
    assert payload["error"] == "unsupported_media_type"
    assert payload["details"][0]["field"] == "Content-Type"
    store = app.extensions["xsell"].store
    assert store.conn.execute("SELECT COUNT(*) FROM feedback").fetchone()[0] == 0


@pytest.mark.parametrize(
    "path",
    [
        "/v1/rank",
        "/v1/offers",
        "/v1/events/shown/reward",
        "/v1/shoppers/alice/preferences",
        "/personalizer/v1.0/rank",
        "/personalizer/v1.0/events/shown/reward",
        "/personalizer/v1.1-preview.3/multislot/rank",
        "/personalizer/events/shown/reward?api-version=2022-09-01-preview",
    ],
)
def test_every_json_route_refuses_text_plain(client: FlaskClient, path: str) -> None:
    response = client.post(path, data=b"{}", content_type="text/plain")
    assert response.status_code == 415
    assert response.is_json


@pytest.mark.parametrize(
    "content_type",
    [
        "application/json",
        "application/json; charset=utf-8",  # the Personalizer 0.1 SDK
        "Application/JSON;charset=UTF-8",
        "application/merge-patch+json",
    ],
)
def test_json_content_types_are_accepted(client: FlaskClient, content_type: str) -> None:
    client.post("/v1/rank", json=rank_body(event_id="shown"))
    response = client.post("/v1/events/shown/feedback", data=FEEDBACK, headers={"Content-Type": content_type})
    assert response.status_code == 200, response.get_data(as_text=True)


def test_a_post_without_a_body_needs_no_content_type(client: FlaskClient) -> None:
    ranked = client.post("/personalizer/v1.0/rank", json={"actions": [{"id": "a"}], "deferActivation": True})
    event_id = ranked.get_json()["eventId"]
    assert client.post(f"/personalizer/v1.0/events/{event_id}/activate").status_code == 204


def test_a_chunked_body_over_the_limit_is_413_not_cut(client: FlaskClient, app: Flask) -> None:
    # As gunicorn passes a chunked body: no Content-Length, the server ends the stream.
    limit = app.config["MAX_CONTENT_LENGTH"]
    raw = b'{"actions": [{"id": "a"}], "context": {"u": {"x": "' + b"y" * limit + b'"}}}'
    chunked = {"wsgi.input_terminated": True}
    headers = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    response = client.post(
        "/v1/rank", input_stream=io.BytesIO(raw), headers=headers, environ_overrides=chunked
    )
    assert response.status_code == 413
    assert response.get_json()["error"] == "request_entity_too_large"
    small = io.BytesIO(b'{"actions": [{"id": "a"}]}')
    assert (
        client.post("/v1/rank", input_stream=small, headers=headers, environ_overrides=chunked).status_code
        == 200
    )
