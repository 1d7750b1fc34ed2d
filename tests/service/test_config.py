"""One configuration in force: a live change reaches every reader, GET/PATCH /v1/config, round trips."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from logs.store import LogStore
from policies.deciding.live_config import LIVE_SETTINGS
from policies.learning.rewards import RewardRules
from scripts.evaluate import load_log
from scripts.learn import build_learner
from service.app import create_app
from service.settings import Settings
from tests.conftest import make_settings
from tests.logs.helpers import decision

ADMIN = {"Authorization": "Bearer admin-key"}
# A value other than the default for every live setting.
LIVE_CHANGES: dict[str, Any] = {
    "reward_window_seconds": 1234.5,
    "default_reward": -0.25,
    "reward_aggregation": "sum",
    "learning_mode": "apprentice",
    "exploration_share": 0.2,
    "log_retention_days": 30,
    "snapshot_interval_seconds": 7.0,
}


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, admin_api_keys="admin-key")


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    app = create_app(settings)
    yield app
    app.extensions["xsell"].store.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def seed_closed_decisions(store: LogStore) -> None:
    """Log a silent decision and one clicked then dismissed, both closed (served by v1)."""
    start = time.time() - 100
    for event_id in ("silent", "mixed"):
        store.record_decision(replace(decision(event_id, created_at=start, window=3600), model_version="v1"))
    store.record_feedback("mixed", "click", None, action_id="a")
    store.record_feedback("mixed", "dismiss", None, action_id="a")
    with store.conn:  # let both reward windows end, the feedback having come in time
        store.conn.execute("UPDATE decisions SET closes_at = created_at + 1")


def expected_rewards(rules: RewardRules) -> dict[str, float]:
    """What the silent and the mixed decision are worth under `rules`."""
    return {
        "silent": rules.default_reward,
        "mixed": {"max": 1.0, "sum": 0.9, "earliest": 1.0}[rules.aggregation],
    }


def test_the_changes_cover_every_live_setting() -> None:
    assert set(LIVE_CHANGES) == set(LIVE_SETTINGS)


@pytest.mark.parametrize("name", sorted(LIVE_CHANGES))
def test_a_live_change_through_the_route_reaches_every_reader(
    app: Flask, client: FlaskClient, settings: Settings, name: str
) -> None:
    value = LIVE_CHANGES[name]
    assert getattr(settings, name) != value
    seed_closed_decisions(app.extensions["xsell"].store)

    response = client.patch("/v1/config", headers=ADMIN, json={name: value})
    assert response.status_code == 200, response.get_json()
    answer = response.get_json()
    assert answer["settings"][name] == {
        "value": value,
        "source": "live",
        "live": True,
        "variable": f"XSELL_{name.upper()}",
    }
    rules = RewardRules(**answer["reward_rules"])
    if name in ("default_reward", "reward_aggregation"):  # the evaluator's check below can tell
        assert expected_rewards(rules) != expected_rewards(settings.reward_rules())

    # the learner and its guardrail, in their own process
    learner, store = build_learner(settings)
    try:
        learner.start()
        learner.step()
        assert learner.guardrail is not None and learner.live is not None
        for reader in (learner.live, learner.guardrail.config):
            assert getattr(reader.current().live, name) == value
            assert reader.current().rules == rules
        assert learner.rules == rules
    finally:
        store.close()

    # the evaluator, reading the log's control table
    loaded = load_log(settings, settings.resolved_model_dir, limit=None)
    assert len(loaded.decisions) == 2
    assert {d.event.event_id: d.rewards[0] for d in loaded.decisions} == pytest.approx(
        expected_rewards(rules)
    )

    # /metrics, and the online metrics of GET /v1/models
    metrics = client.get("/metrics").get_data(as_text=True)
    if isinstance(value, str):
        assert f'xsell_config_choice{{setting="{name}",source="live",value="{value}"}} 1.0' in metrics
    else:
        assert f'xsell_config{{setting="{name}",source="live"}} {float(value)}' in metrics
    online = {
        r["version"]: r["online"] for r in client.get("/v1/models", headers=ADMIN).get_json()["versions"]
    }
    assert online["v1"] is not None and online["v1"]["decisions"] == 2
    assert online["v1"]["mean_reward"] == pytest.approx(sum(expected_rewards(rules).values()) / 2)


def test_the_guardrail_judges_with_the_default_reward_in_force(
    app: Flask, client: FlaskClient, settings: Settings
) -> None:
    """All clicked under v1, all silent under v2: a drop only while silence is worth less."""
    from policies.deciding.vw import VWPolicy

    store = app.extensions["xsell"].store
    registry = app.extensions["xsell"].registry
    v2 = registry.publish(VWPolicy(settings.vw_args), parent="v1")
    start = time.time() - 10_000
    for k in range(20):
        for version, clicked in (("v1", True), (v2.version, False)):
            record = decision(f"{version}-{k}", created_at=start + (k if clicked else 100 + k), window=20_000)
            store.record_decision(replace(record, model_version=version))
            if clicked:
                store.record_feedback(record.event_id, "click", None, action_id="a")
    with store.conn:
        store.conn.execute("UPDATE decisions SET closes_at = created_at + 1")
    # judged from the start: the publication of v2 came after these decisions were made
    with store.conn:
        store.conn.execute("DELETE FROM model_changes")
    assert client.patch("/v1/config", headers=ADMIN, json={"default_reward": 1.0}).status_code == 200
    tight = settings.model_copy(update={"guardrail_window_events": 20, "guardrail_min_events": 10})
    learner, learner_store = build_learner(tight)
    try:
        assert learner.guardrail is not None
        assert learner.guardrail.check() is None  # silence is worth a click now: no drop
        assert client.patch("/v1/config", headers=ADMIN, json={"default_reward": None}).status_code == 200
        learner.guardrail.config.ttl_seconds = 0  # type: ignore[attr-defined]
        change = learner.guardrail.check()  # the environment's 0 again: a drop from 1 to 0
        assert change is not None and change.action == "guardrail"
    finally:
        learner_store.close()


def test_every_setting_is_reported_with_its_source(client: FlaskClient, settings: Settings) -> None:
    body = client.get("/v1/config", headers=ADMIN).get_json()
    assert set(body["settings"]) == set(Settings.model_fields)
    assert body["settings"]["reward_window_seconds"]["source"] == "environment"  # make_settings gives it
    assert body["settings"]["default_reward"]["source"] == "default"
    assert body["settings"]["vw_args"]["live"] is False
    assert body["settings"]["admin_api_keys"]["value"] == "**********"  # never the key itself
    assert body["reward_rules"] == asdict(settings.reward_rules())
    assert body["updated_at"] is None


def test_null_returns_a_setting_to_the_environment(client: FlaskClient) -> None:
    client.patch("/v1/config", headers=ADMIN, json={"reward_window_seconds": 5.0, "default_reward": -1})
    body = client.patch("/v1/config", headers=ADMIN, json={"reward_window_seconds": None}).get_json()
    assert body["settings"]["reward_window_seconds"] == {
        "value": 60.0,
        "source": "environment",
        "live": True,
        "variable": "XSELL_REWARD_WINDOW_SECONDS",
    }
    assert body["settings"]["default_reward"]["source"] == "live"  # the other override stays
    assert body["updated_at"] is not None


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({"reward_window_seconds": 0}, 422, "invalid_field", "reward_window_seconds"),
        ({"reward_window_seconds": 1e12}, 422, "invalid_field", "reward_window_seconds"),
        ({"snapshot_interval_seconds": -1}, 422, "invalid_field", "snapshot_interval_seconds"),
        ({"exploration_share": 1.5}, 422, "invalid_field", "exploration_share"),
        ({"log_retention_days": 0}, 422, "invalid_field", "log_retention_days"),
        ({"log_retention_days": 1.5}, 422, "validation_error", "log_retention_days"),
        ({"learning_mode": "sometimes"}, 422, "validation_error", "learning_mode"),
        ({"reward_aggregation": "median"}, 422, "validation_error", "reward_aggregation"),
        ({"default_reward": "a lot"}, 422, "validation_error", "default_reward"),
        ({"vw_args": "--cb_explore_adf"}, 422, "validation_error", "vw_args"),  # not live
        (
            {"default_reward": -0.5, "reward_window_seconds": -1},
            422,
            "invalid_field",
            "reward_window_seconds",
        ),
        ([1, 2], 422, "validation_error", "body"),
    ],
)
def test_a_bad_change_is_refused_naming_the_setting_and_changes_nothing(
    client: FlaskClient, body: Any, status: int, code: str, field: str
) -> None:
    before = client.get("/v1/config", headers=ADMIN).get_json()
    response = client.patch("/v1/config", headers=ADMIN, json=body)
    assert response.status_code == status
    error = response.get_json()
    assert error["error"] == code
    assert error["details"] and error["details"][0]["field"] == field
    assert client.get("/v1/config", headers=ADMIN).get_json() == before


def test_infinite_numbers_are_refused(client: FlaskClient) -> None:
    response = client.patch(
        "/v1/config", headers=ADMIN, data='{"default_reward": 1e999}', content_type="application/json"
    )
    assert response.status_code == 422
    assert response.get_json()["details"][0]["field"] == "default_reward"


@pytest.mark.parametrize("name", ["log_retention_days", "default_reward", "exploration_share"])
def test_true_is_not_read_as_one(client: FlaskClient, name: str) -> None:
    # log_retention_days=true once kept one day of the log: pydantic read true as 1.
    before = client.get("/v1/config", headers=ADMIN).get_json()
    response = client.patch("/v1/config", headers=ADMIN, json={name: True})
    assert response.status_code == 422
    assert response.get_json()["details"][0]["field"] == name
    assert client.get("/v1/config", headers=ADMIN).get_json() == before


@pytest.mark.parametrize("method", ["get", "patch"])
def test_the_configuration_needs_an_admin_key(client: FlaskClient, method: str) -> None:
    assert getattr(client, method)("/v1/config", json={}).status_code == 401
    assert getattr(client, method)("/v1/config", json={}, headers={"X-Api-Key": "nope"}).status_code == 403


def test_an_unusable_live_setting_in_the_environment_is_refused_naming_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pydantic import ValidationError

    monkeypatch.setenv("XSELL_LOG_RETENTION_DAYS", "0")
    with pytest.raises(ValidationError, match="log_retention_days"):
        Settings()


def test_personalizer_get_then_put_round_trips_what_the_environment_set(tmp_path: Path) -> None:
    """A reward window of 0.5 s from the environment is reported, and the same body is accepted."""
    app = create_app(
        make_settings(tmp_path, admin_api_keys="admin-key", reward_window_seconds=0.5, default_reward=-2.0)
    )
    client = app.test_client()
    try:
        url = "/personalizer/v1.0/configurations/service"
        before = client.get(url, headers=ADMIN).get_json()
        assert before["rewardWaitTime"] == "PT0.5S" and before["defaultReward"] == -2.0
        put = client.put(url, headers=ADMIN, json=before)
        assert put.status_code == 200, put.get_json()
        assert put.get_json() == before
        assert client.get(url, headers=ADMIN).get_json() == before
        sources = {
            k: v["source"] for k, v in client.get("/v1/config", headers=ADMIN).get_json()["settings"].items()
        }
        assert sources["reward_window_seconds"] == "environment"  # sent back unchanged: not an override
        # what GET reports, PUT accepts: a short window set over the API as well
        changed = client.put(url, headers=ADMIN, json={"rewardWaitTime": "PT0.25S"})
        assert changed.status_code == 200 and changed.get_json()["rewardWaitTime"] == "PT0.25S"
    finally:
        app.extensions["xsell"].store.close()


@pytest.mark.slow
def test_fuzzed_configuration_changes_with_the_key_never_cause_a_server_error(app: Flask) -> None:
    import schemathesis
    from hypothesis import HealthCheck, given
    from hypothesis import settings as hypothesis_settings
    from schemathesis.checks import not_a_server_error

    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations() if result.ok().path == "/v1/config"]
    assert len(operations) == 2
    for operation in operations:

        @given(case=operation.as_strategy())
        @hypothesis_settings(
            max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None
        )
        def check(case: Any) -> None:
            case.headers = {**(case.headers or {}), **ADMIN}
            response = case.call_and_validate(checks=[not_a_server_error])
            assert response.status_code in (200, 422), response.text

        check()
    # whatever was accepted, the service still answers with a usable configuration
    assert app.test_client().get("/v1/config", headers=ADMIN).status_code == 200
