"""Two answers a new user meets early say what went wrong in a sentence (README, Errors)."""

from __future__ import annotations

from pathlib import Path

from service.app import create_app
from tests.conftest import make_settings


def test_feedback_for_an_unknown_event_is_a_404_saying_so(tmp_path: Path) -> None:
    client = create_app(make_settings(tmp_path)).test_client()

    answer = client.post("/v1/events/order-9/feedback", json={"signal": "click"})

    assert answer.status_code == 404
    body = answer.get_json()
    assert body["error"] == "unknown_event"
    assert body["message"] == "no decision with event id 'order-9' (never ranked here, or purged since)"
    assert body["details"] == [{"field": "event_id", "message": body["message"], "type": "unknown_event"}]


def test_a_body_over_the_limit_is_a_413_naming_the_setting(tmp_path: Path) -> None:
    client = create_app(make_settings(tmp_path, max_body_bytes=2048)).test_client()

    answer = client.post(
        "/v1/rank", data=b'{"actions": [{"id": "' + b"x" * 4096 + b'"}]}', content_type="application/json"
    )

    assert answer.status_code == 413
    body = answer.get_json()
    assert body["error"] == "request_entity_too_large"
    assert body["message"] == "the request body is larger than XSELL_MAX_BODY_BYTES allows (2,048 bytes)"
    assert body["details"] == [
        {
            "field": "body",
            "message": body["message"],
            "type": "limit_exceeded",
            "limit": "XSELL_MAX_BODY_BYTES",
            "maximum": 2048,
        }
    ]
