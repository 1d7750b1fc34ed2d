"""A reward (and an order value) is a JSON number: true, false, "1", NaN and Infinity are refused.

pydantic's lax mode read ``true`` as 1.0 and ``"0.5"`` as 0.5, so a storefront that sent
a boolean by mistake taught the model a full reward for every event.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.app import create_app
from tests.conftest import make_settings, rank_body

V1 = "/personalizer/v1.0"
ADMIN = {"Ocp-Apim-Subscription-Key": "admin-key"}
NOT_NUMBERS = ["true", "false", '"1"', '"0.5"', "NaN", "Infinity", "-Infinity", "null"]


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    app = create_app(make_settings(tmp_path, admin_api_keys="admin-key"))
    yield app
    app.extensions["xsell"].store.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def _post(client: FlaskClient, path: str, raw: str, headers: dict[str, str] | None = None) -> Any:
    return client.post(path, data=raw, content_type="application/json", headers=headers or {})


def _ranked(client: FlaskClient, event_id: str) -> None:
    assert client.post("/v1/rank", json=rank_body(event_id=event_id)).status_code == 200
    pbody = {"eventId": event_id, "actions": [{"id": "a"}, {"id": "b"}]}
    assert client.post(f"{V1}/rank", json=pbody).status_code == 201
    multi = {
        "eventId": f"m-{event_id}",
        "actions": [{"id": "a"}, {"id": "b"}],
        "slots": [{"id": "s", "baselineAction": "a"}],
    }
    assert client.post(f"{V1}/multislot/rank", json=multi).status_code == 201


def _feedback_count(app: Flask) -> int:
    return int(app.extensions["xsell"].store.conn.execute("SELECT count(*) FROM feedback").fetchone()[0])


@pytest.mark.parametrize("value", NOT_NUMBERS)
def test_core_reward_must_be_a_number(app: Flask, client: FlaskClient, value: str) -> None:
    _ranked(client, "e1")
    response = _post(client, "/v1/events/e1/reward", f'{{"value": {value}}}')
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["details"][0]["field"] == "value"
    assert _feedback_count(app) == 0


@pytest.mark.parametrize("value", [v for v in NOT_NUMBERS if v != "null"])  # null: no order value
def test_core_order_value_must_be_a_number(app: Flask, client: FlaskClient, value: str) -> None:
    _ranked(client, "e1")
    response = _post(client, "/v1/events/e1/feedback", f'{{"signal": "purchase", "value": {value}}}')
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["details"][0]["field"] == "value"
    assert _feedback_count(app) == 0


@pytest.mark.parametrize("value", NOT_NUMBERS)
def test_personalizer_reward_must_be_a_number(app: Flask, client: FlaskClient, value: str) -> None:
    _ranked(client, "e1")
    single = _post(client, f"{V1}/events/e1/reward", f'{{"value": {value}}}')
    assert single.status_code == 400, single.get_json()
    assert single.get_json()["error"]["target"] == "value"
    multi = _post(
        client, f"{V1}/multislot/events/m-e1/reward", f'{{"reward": [{{"slotId": "s", "value": {value}}}]}}'
    )
    assert multi.status_code == 400, multi.get_json()
    assert multi.get_json()["error"]["target"] == "reward.0.value"
    assert _feedback_count(app) == 0


@pytest.mark.parametrize("value", ['"0.5"', "NaN", "Infinity"])
def test_personalizer_default_reward_must_be_a_number(client: FlaskClient, value: str) -> None:
    response = client.put(
        f"{V1}/configurations/service",
        data=f'{{"defaultReward": {value}}}',
        content_type="application/json",
        headers=ADMIN,
    )
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["error"]["target"] == "defaultReward"


@pytest.mark.parametrize("value", ['"0.5"', "true", "NaN"])
def test_the_live_default_reward_must_be_a_number(client: FlaskClient, value: str) -> None:
    admin = {"Authorization": "Bearer admin-key"}
    response = client.patch(
        "/v1/config", data=f'{{"default_reward": {value}}}', content_type="application/json", headers=admin
    )
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["details"][0]["field"] == "default_reward"
    numbers = {"default_reward": -0.25, "log_retention_days": 30, "reward_aggregation": "sum"}
    assert client.patch("/v1/config", json=numbers, headers=admin).status_code == 200


def test_integers_and_decimals_are_rewards(app: Flask, client: FlaskClient) -> None:
    _ranked(client, "e1")
    assert _post(client, "/v1/events/e1/reward", '{"value": 1}').status_code == 200
    assert _post(client, "/v1/events/e1/feedback", '{"signal": "purchase", "value": 120}').status_code == 200
    assert _post(client, f"{V1}/events/e1/reward", '{"value": 1}').status_code == 204
    assert _post(client, f"{V1}/events/e1/reward", '{"value": -0.5}').status_code == 204
    multi = '{"reward": [{"slotId": "s", "value": 0}]}'
    assert _post(client, f"{V1}/multislot/events/m-e1/reward", multi).status_code == 204
    assert _feedback_count(app) == 5
