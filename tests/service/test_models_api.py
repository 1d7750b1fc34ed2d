"""Admin model endpoints and API keys, through the Flask app on a real log."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from policies.deciding.vw import VWPolicy
from service.app import create_app
from tests.conftest import make_settings, rank_body

ADMIN = {"Authorization": "Bearer admin-secret"}


@pytest.fixture
def admin_app(tmp_path: Path) -> Iterator[Flask]:
    keys = tmp_path / "storefront-keys"
    keys.write_text("# one per line\nshop-key-1\nshop-key-2\n")
    app = create_app(make_settings(tmp_path, admin_api_keys="admin-secret,second-admin", api_key_file=keys))
    yield app
    app.extensions["xsell"].store.close()


@pytest.fixture
def admin(admin_app: Flask) -> FlaskClient:
    return admin_app.test_client()


def publish(app: Flask) -> str:
    res = app.extensions["xsell"]
    return res.registry.publish(VWPolicy(res.settings.vw_args), parent=res.registry.active().version).version


def test_admin_endpoints_are_disabled_without_an_admin_key(client: FlaskClient) -> None:
    response = client.get("/v1/models", headers=ADMIN)
    assert response.status_code == 403
    assert response.get_json()["error"] == "admin_disabled"


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({}, 401, "missing_api_key"),
        ({"Authorization": "Bearer wrong"}, 403, "invalid_api_key"),
        ({"X-Api-Key": "shop-key-1"}, 403, "invalid_api_key"),  # a storefront key is not an admin key
        ({"Authorization": "Bearer "}, 401, "missing_api_key"),
    ],
)
def test_admin_endpoints_refuse_requests_without_a_valid_admin_key(admin, headers, status, code) -> None:
    response = admin.post("/v1/models/rollback", headers=headers, json={})
    assert response.status_code == status
    assert response.get_json()["error"] == code


def test_storefront_endpoints_need_a_storefront_key_when_keys_are_set(admin: FlaskClient) -> None:
    assert admin.post("/v1/rank", json=rank_body()).status_code == 401
    assert admin.post("/v1/rank", json=rank_body(), headers={"X-Api-Key": "nope"}).status_code == 403
    answer = admin.post("/v1/rank", json=rank_body(), headers={"X-Api-Key": "shop-key-2"})
    assert answer.status_code == 200
    event_id = answer.get_json()["event_id"]
    feedback = admin.post(f"/v1/events/{event_id}/feedback", json={"signal": "click"}, headers=ADMIN)
    assert feedback.status_code == 200  # admin keys work everywhere
    assert admin.get("/healthz").status_code == 200  # health stays open for probes


def test_list_shows_versions_metrics_and_changes(admin_app: Flask, admin: FlaskClient) -> None:
    answer = admin.post("/v1/rank", json=rank_body(), headers=ADMIN).get_json()
    admin.post(f"/v1/events/{answer['event_id']}/feedback", json={"signal": "click"}, headers=ADMIN)
    v2 = publish(admin_app)
    admin.post("/v1/models/v1/activate", headers=ADMIN, json={"reason": "testing"})
    body = admin.get("/v1/models", headers=ADMIN).get_json()
    assert body["active"] == "v1"
    rows = {row["version"]: row for row in body["versions"]}
    assert set(rows) == {"v1", v2}
    assert rows["v1"]["state"] == "active" and rows[v2]["state"] == "retired"
    assert rows["v1"]["sha256"] and rows["v1"]["file_kept"] and rows["v1"]["vw_args"]
    # Its reward window has not ended: the clicked decision does not count yet, and the
    # answer says one is waiting (a clicked decision counted at once inflated the mean).
    assert rows["v1"]["online"] is None and body["decisions_within_window"] == 1
    assert body["changes"][0]["reason"] == "testing" and body["changes"][0]["actor"] == "http"
    later = time.time() + admin_app.extensions["xsell"].settings.reward_window_seconds + 1
    admin_app.extensions["xsell"].store.clock = lambda: later
    body = admin.get("/v1/models", headers=ADMIN).get_json()
    rows = {row["version"]: row for row in body["versions"]}
    assert rows["v1"]["online"]["decisions"] == 1 and rows["v1"]["online"]["mean_reward"] == 1.0
    assert rows["v1"]["online"]["low"] is None  # no interval from a single decision
    assert body["decisions_within_window"] == 0


def test_activate_and_rollback_change_what_the_app_serves(admin_app: Flask, admin: FlaskClient) -> None:
    v2 = publish(admin_app)
    assert admin.post("/v1/rank", json=rank_body(), headers=ADMIN).get_json()["model_version"] == v2
    response = admin.post("/v1/models/rollback", headers=ADMIN, json={"to": "v1", "freeze": True})
    assert response.status_code == 200
    assert response.get_json()["version"] == "v1"
    time.sleep(0.05)  # workers look for a new active model every XSELL_MODEL_POLL_SECONDS (0.01 here)
    assert admin.post("/v1/rank", json=rank_body(), headers=ADMIN).get_json()["model_version"] == "v1"
    assert admin.get("/v1/models", headers=ADMIN).get_json()["learning_frozen"] is True
    assert admin.post("/v1/learning", headers=ADMIN, json={"frozen": False}).get_json() == {
        "learning_frozen": False
    }


@pytest.mark.parametrize(
    ("path", "body", "status", "code"),
    [
        ("/v1/models/v99/activate", {}, 404, "unknown_version"),
        ("/v1/models/v1/promote", {}, 409, "model_change_refused"),
        ("/v1/models/rollback", {"to": "v1"}, 409, "model_change_refused"),
        ("/v1/models/rollback", {"to": ""}, 422, "validation_error"),
        ("/v1/models/rollback", {"relearn": "yes please"}, 422, "validation_error"),
        ("/v1/models/v1/activate", {"reason": "x" * 501}, 422, "validation_error"),
        ("/v1/models/v1/activate", {"surprise": 1}, 422, "validation_error"),
        ("/v1/learning", {}, 422, "validation_error"),
    ],
)
def test_bad_model_requests_get_a_clear_4xx(admin, path, body, status, code) -> None:
    response = admin.post(path, headers=ADMIN, json=body)
    assert response.status_code == status, response.get_json()
    assert response.get_json()["error"] == code
    assert admin.get("/v1/models", headers=ADMIN).get_json()["active"] == "v1"  # nothing changed


def test_a_corrupt_version_is_refused_and_the_old_one_keeps_serving(
    admin_app: Flask, admin: FlaskClient
) -> None:
    v2 = publish(admin_app)
    registry = admin_app.extensions["xsell"].registry
    (registry.model_dir / "v1.vw").write_bytes(b"corrupt")
    response = admin.post("/v1/models/v1/activate", headers=ADMIN)
    assert response.status_code == 409
    assert "does not load" in response.get_json()["message"]
    assert admin.post("/v1/rank", json=rank_body(), headers=ADMIN).get_json()["model_version"] == v2


def test_metrics_and_readyz_report_a_guardrail_rollback(admin_app: Flask, admin: FlaskClient) -> None:
    v2 = publish(admin_app)
    answer = admin.post("/v1/rank", json=rank_body(), headers=ADMIN).get_json()
    admin.post(f"/v1/events/{answer['event_id']}/feedback", json={"signal": "click"}, headers=ADMIN)
    registry = admin_app.extensions["xsell"].registry
    registry.rollback(to="v1", actor="guardrail", reason="reward fell from 0.3 to 0.1", action="guardrail")
    warnings = admin.get("/readyz").get_json()["warnings"]
    assert any(w.startswith(f"guardrail: rolled back to v1 (was {v2})") for w in warnings)
    text = admin.get("/metrics").get_data(as_text=True)
    assert 'xsell_model_changes_total{action="guardrail"} 1.0' in text
    assert f'xsell_decisions_total{{model_version="{v2}"}} 1.0' in text
    assert 'xsell_feedback_total{signal="click"} 1.0' in text
    assert "xsell_active_model_seq 1.0" in text
