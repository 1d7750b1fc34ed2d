"""A signed model export whose signature.json an attacker wrote: refused as a 400, never a 500."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service.app import create_app
from service.personalizer.signing import fixed_tar
from tests.conftest import make_settings

ADMIN = {"Authorization": "Bearer admin-key", "Content-Type": "application/octet-stream"}
MODEL = "/personalizer/v1.0/model"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    app = create_app(make_settings(tmp_path, admin_api_keys="admin-key"))
    yield app
    app.extensions["xsell"].store.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.mark.parametrize("signature", ["é" * 64, "\u0000" * 64, "0" * 64])
def test_a_forged_signature_is_a_bad_request(client: FlaskClient, signature: str) -> None:
    export = client.get(MODEL, headers=ADMIN).data
    assert export
    forged = fixed_tar(
        [
            ("model.tar", export),
            ("signature.json", json.dumps({"algorithm": "HMAC-SHA256", "signature": signature}).encode()),
        ]
    )
    answer = client.put(MODEL, data=forged, headers=ADMIN)
    assert answer.status_code == 400  # a non-ASCII signature was a TypeError: 500
    assert "not made by this server's key" in answer.get_data(as_text=True)
