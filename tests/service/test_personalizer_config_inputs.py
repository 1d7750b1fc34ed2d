"""Personalizer's service configuration PUT reads numbers as numbers: true is not 1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.app import create_app
from tests.conftest import make_settings

ADMIN = {"Authorization": "Bearer admin-key"}
SERVICE = "/personalizer/v1.1-preview.3/configurations/service"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    app = create_app(make_settings(tmp_path, admin_api_keys="admin-key"))
    yield app
    app.extensions["xsell"].store.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.mark.parametrize(
    "field", ["logRetentionDays", "explorationPercentage", "defaultReward", "modelRetrainDays"]
)
def test_true_is_refused_and_changes_nothing(client: FlaskClient, field: str) -> None:
    # logRetentionDays=true kept one day of the log; explorationPercentage=true explored always.
    before = client.get(SERVICE, headers=ADMIN).get_json()
    answer = client.put(SERVICE, headers=ADMIN, json={field: True})
    assert answer.status_code == 400
    assert field in answer.get_data(as_text=True)
    assert client.get(SERVICE, headers=ADMIN).get_json() == before


def test_a_boolean_setting_still_takes_true(client: FlaskClient) -> None:
    answer = client.put(SERVICE, headers=ADMIN, json={"isAutoOptimizationEnabled": True})
    assert answer.status_code == 200
