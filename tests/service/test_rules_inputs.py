"""The operator's standing rules take finite numbers only: what is kept is what the answer shows."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.app import create_app
from tests.conftest import make_settings

ADMIN = {"Authorization": "Bearer admin-key", "Content-Type": "application/json"}


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    app = create_app(make_settings(tmp_path, admin_api_keys="admin-key"))
    yield app
    app.extensions["xsell"].store.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.mark.parametrize("value", ["Infinity", "NaN", "-Infinity"])
def test_a_margin_floor_that_is_not_finite_is_refused(client: FlaskClient, value: str) -> None:
    # Infinity was kept (every candidate with a known margin removed) and echoed as null.
    before = client.get("/v1/rules", headers=ADMIN).get_json()
    answer = client.put("/v1/rules", data=f'{{"margin_floor": {value}}}', headers=ADMIN)
    assert answer.status_code == 422
    assert answer.get_json()["details"][0]["field"] == "margin_floor"
    assert client.get("/v1/rules", headers=ADMIN).get_json() == before
