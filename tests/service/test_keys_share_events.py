"""Storefront keys are credentials of one storefront, not tenants: an event answers to any of them.

Pinned on purpose (docs/security.md, "Several keys are one storefront"): a key is rotated
by adding the new one and moving the clients, and the rewards of events ranked under the
old key arrive with the new one for a whole reward window. Binding an event to the key
that ranked it would drop them, and isolate nothing: every key ranks into the same log
and teaches the same model.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.app import create_app
from tests.conftest import make_settings, rank_body

V1 = "/personalizer/v1.0"
OLD, NEW = {"X-Api-Key": "old-key"}, {"Ocp-Apim-Subscription-Key": "new-key"}


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    app = create_app(make_settings(tmp_path, api_keys="old-key,new-key"))
    yield app
    app.extensions["xsell"].store.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def _on_time(app: Flask, event_id: str) -> list[float]:
    rows = app.extensions["xsell"].store.conn.execute(
        "SELECT value FROM feedback WHERE event_id = ? AND on_time = 1 ORDER BY id", (event_id,)
    )
    return [row[0] for row in rows]


def test_feedback_for_an_event_ranked_under_the_old_key_counts_with_the_new_one(
    app: Flask, client: FlaskClient
) -> None:
    assert client.post("/v1/rank", json=rank_body(event_id="order-1"), headers=OLD).status_code == 200
    answer = client.post("/v1/events/order-1/reward", json={"value": 1.0}, headers=NEW)
    assert answer.status_code == 200 and answer.get_json()["learnable"]
    assert _on_time(app, "order-1") == [1.0]


def test_a_deferred_personalizer_event_is_activated_and_rewarded_with_the_new_key(
    app: Flask, client: FlaskClient
) -> None:
    body = {"eventId": "p-1", "actions": [{"id": "a"}, {"id": "b"}], "deferActivation": True}
    assert client.post(f"{V1}/rank", json=body, headers=OLD).status_code == 201
    assert client.post(f"{V1}/events/p-1/activate", headers=NEW).status_code == 204
    assert client.post(f"{V1}/events/p-1/reward", json={"value": 0.5}, headers=NEW).status_code == 204
    decision = app.extensions["xsell"].store.find_decision("p-1")
    assert decision is not None and decision.closes_at != float("inf")  # activated
    assert _on_time(app, "p-1") == [0.5]


def test_a_key_removed_from_the_configuration_claims_nothing(tmp_path: Path) -> None:
    first = create_app(make_settings(tmp_path, api_keys="old-key,new-key"))
    assert first.test_client().post("/v1/rank", json=rank_body(event_id="o"), headers=OLD).status_code == 200
    first.extensions["xsell"].store.close()
    rotated = create_app(make_settings(tmp_path, api_keys="new-key"))  # the restart that ends the old key
    client = rotated.test_client()
    assert client.post("/v1/events/o/reward", json={"value": 1.0}, headers=OLD).status_code == 403
    assert client.post("/v1/events/o/reward", json={"value": 1.0}, headers=NEW).status_code == 200
    rotated.extensions["xsell"].store.close()
