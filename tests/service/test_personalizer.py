"""The Personalizer API through the Flask test client, on a real log, registry and learner.

tests/e2e/test_personalizer_sdk.py drives the same routes with the official SDKs
against gunicorn; these tests pin the behaviour behind them.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from policies.learning.learner import rewards_for
from scripts.learn import build_learner
from service.app import create_app
from service.settings import Settings
from tests.conftest import make_settings

V1 = "/personalizer/v1.0"
PREVIEW = "/personalizer"
ADMIN = {"Ocp-Apim-Subscription-Key": "admin-key"}
ACTIONS = [
    {"id": "sd-card", "features": [{"kind": "storage"}, {"price": 19.9}]},
    {"id": "tripod", "features": [{"kind": "support", "tags": ["photo", "video"]}]},
    {"id": "bag", "features": [{"kind": "carry"}]},
]
CONTEXT = [{"user": {"tier": "gold", "device": {"os": "ios"}}}, {"timeOfDay": "morning"}]


def rank_body(**extra: Any) -> dict[str, Any]:
    return {"contextFeatures": CONTEXT, "actions": ACTIONS, **extra}


def make_client(tmp_path: Path, **overrides: object) -> tuple[FlaskClient, Settings]:
    settings = make_settings(tmp_path, admin_api_keys="admin-key", **overrides)
    return create_app(settings).test_client(), settings


@pytest.fixture
def pclient(tmp_path: Path) -> FlaskClient:
    client, _ = make_client(tmp_path)
    return client


def store_of(client: FlaskClient):  # type: ignore[no-untyped-def]
    return client.application.extensions["xsell"].store


def error_of(response: Any) -> dict[str, Any]:
    assert response.content_type == "application/json; charset=utf-8"
    body = response.get_json()
    assert set(body) == {"error"}, body
    assert {"code", "message"} <= set(body["error"])
    return body["error"]


# -- rank ------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", [V1, PREVIEW])
def test_rank_answers_201_with_a_distribution_and_the_chosen_action_first(
    pclient: FlaskClient, prefix: str
) -> None:
    response = pclient.post(
        f"{prefix}/rank?api-version=2022-09-01-preview", json=rank_body(excludedActions=["bag"])
    )
    assert response.status_code == 201
    assert response.content_type == "application/json; charset=utf-8"
    body = response.get_json()
    probabilities = {r["id"]: r["probability"] for r in body["ranking"]}
    assert set(probabilities) == {"sd-card", "tripod", "bag"}
    assert probabilities["bag"] == 0
    assert sum(probabilities.values()) == pytest.approx(1.0)
    assert body["ranking"][0]["id"] == body["rewardActionId"] != "bag"
    logged = store_of(pclient).find_decision(body["eventId"])
    assert logged.choices[0].action_id == body["rewardActionId"]
    assert logged.choices[0].probability == probabilities[body["rewardActionId"]]


def test_feature_objects_become_namespaces_in_the_log(pclient: FlaskClient) -> None:
    body = pclient.post(f"{V1}/rank", json=rank_body(eventId="features")).get_json()
    logged = store_of(pclient).find_decision(body["eventId"])
    assert logged.context == {
        "user": {"tier": "gold", "device.os": "ios"},
        "default": {"timeOfDay": "morning"},
    }
    tripod = next(a for a in logged.actions if a.id == "tripod")
    assert tripod.features == {"default": {"kind": "support", "tags": ["photo", "video"]}}


def test_a_retry_returns_the_same_answer_and_a_reused_id_gets_a_decision_of_its_own(
    pclient: FlaskClient,
) -> None:
    first = pclient.post(f"{V1}/rank", json=rank_body(eventId="order-7"))
    again = pclient.post(f"{V1}/rank", json=rank_body(eventId="order-7"))
    assert first.get_json() == again.get_json()
    # Personalizer answered 201; the first decision stays as logged, the second is logged beside it
    other = pclient.post(f"{V1}/rank", json={"actions": ACTIONS[:2], "eventId": "order-7"})
    assert other.status_code == 201
    assert other.get_json()["eventId"] == "order-7"
    store = store_of(pclient)
    assert [a.id for a in store.find_decision("order-7").actions] == [a["id"] for a in ACTIONS]
    assert [a.id for a in store.find_decision("order-7\x1e2").actions] == ["sd-card", "tripod"]
    retried = pclient.post(f"{V1}/rank", json={"actions": ACTIONS[:2], "eventId": "order-7"})
    assert retried.get_json() == other.get_json()  # a retry of the second gets the second
    assert store.conn.execute("SELECT COUNT(*) FROM decisions").fetchone()[0] == 2


def test_unknown_fields_are_ignored(pclient: FlaskClient) -> None:
    body = rank_body(somethingNew=True)
    body["actions"] = [{**a, "extra": 1} for a in ACTIONS]
    assert pclient.post(f"{V1}/rank", json=body).status_code == 201


@pytest.mark.parametrize(
    ("path", "body", "target"),
    [
        ("/rank", {"actions": []}, "actions"),
        ("/rank", {"contextFeatures": CONTEXT}, "actions"),
        ("/rank", {"actions": [{"id": "a"}, {"id": "a"}]}, None),
        ("/rank", {"actions": [{"id": "a"}], "excludedActions": ["a"]}, None),
        ("/rank", {"actions": [{"id": "a", "features": ["not an object"]}]}, "actions[0].features[0]"),
        ("/rank", {"actions": [{"id": "a"}], "contextFeatures": [{"u": {"x": "y" * 300}}]}, None),
        ("/rank", {"actions": [{"id": "a"}], "eventId": "x" * 300}, "eventId"),
        ("/events/e/reward", {"value": 3}, "value"),
        ("/events/e/reward", {"value": "high"}, "value"),
        ("/events/e/reward", {}, "value"),
        ("/multislot/rank", {"actions": [{"id": "a"}], "slots": [{"id": "s", "baselineAction": "zz"}]}, None),
        ("/multislot/events/e/reward", {"reward": []}, "reward"),
    ],
)
def test_malformed_requests_get_personalizers_error_shape_with_400(
    pclient: FlaskClient, path: str, body: dict[str, Any], target: str | None
) -> None:
    pclient.post(f"{V1}/rank", json=rank_body(eventId="e"))
    response = pclient.post(f"{V1}{path}", json=body)
    assert response.status_code == 400, response.get_json()
    error = error_of(response)
    assert error["code"] == "BadRequest"
    if target is not None:
        assert error["target"] == target


def test_a_body_that_is_not_json_is_a_400(pclient: FlaskClient) -> None:
    response = pclient.post(f"{V1}/rank", data="{nope", content_type="application/json")
    assert response.status_code == 400
    assert error_of(response)["innerError"]["code"] == "invalid_json"


def test_unknown_routes_are_404_in_personalizers_shape(pclient: FlaskClient) -> None:
    assert error_of(pclient.get(f"{V1}/nothing-here"))["code"] == "ResourceNotFound"


# -- reward, activation, event ids ---------------------------------------------------------


@pytest.mark.parametrize("event_id", ["a/b", "with space", "100%", "ünï"])
def test_percent_encoded_event_ids_are_matched(pclient: FlaskClient, event_id: str) -> None:
    from urllib.parse import quote

    pclient.post(f"{V1}/rank", json=rank_body(eventId=event_id))
    response = pclient.post(f"{V1}/events/{quote(event_id, safe='')}/reward", json={"value": 0.5})
    assert response.status_code == 204
    row = (
        store_of(pclient)
        .conn.execute("SELECT value FROM feedback WHERE event_id = ?", (event_id,))
        .fetchone()
    )
    assert row["value"] == 0.5


def test_rewards_sum_under_the_sum_aggregation(tmp_path: Path) -> None:
    client, settings = make_client(tmp_path)
    client.put(f"{PREVIEW}/configurations/service", headers=ADMIN, json={"rewardAggregation": "sum"})
    client.post(f"{V1}/rank", json=rank_body(eventId="twice"))
    client.post(f"{V1}/events/twice/reward", json={"value": 0.3})
    client.post(f"{V1}/events/twice/reward", json={"value": 0.3})
    store = store_of(client)
    # the first reward did not close the event: the second one still counts
    assert store.find_decision("twice").closes_at > time.time() + 30
    events = store.closed_events(closed_before=float("inf"))
    rules = client.application.extensions["xsell"].live_rules()
    assert rewards_for(events[0][0], rules) == [pytest.approx(0.6)]


def test_a_deferred_event_is_learned_only_after_activation(tmp_path: Path) -> None:
    # Time stands still while the requests run (a 0.05 s window must not close on a slow
    # machine before the reward arrives), then moves past the window for the learner.
    now = [time.time()]
    settings = make_settings(tmp_path, admin_api_keys="admin-key", reward_window_seconds=0.05)
    client = create_app(settings, clock=lambda: now[0]).test_client()
    learner, store = build_learner(settings, clock=lambda: now[0])
    learner.start()
    for event_id in ("never-shown", "shown"):
        assert (
            client.post(f"{V1}/rank", json=rank_body(eventId=event_id, deferActivation=True)).status_code
            == 201
        )
        client.post(f"{V1}/events/{event_id}/reward", json={"value": 1.0})  # before activation: ignored
    assert client.post(f"{V1}/events/shown/activate").status_code == 204
    assert client.post(f"{V1}/events/shown/reward", json={"value": 0.8}).status_code == 204
    now[0] += 3600
    learner.step(now=now[0])
    learner.snapshot()
    learned = dict(store.conn.execute("SELECT event_id, learned_in FROM decisions").fetchall())
    assert learned["shown"] is not None
    assert learned["never-shown"] is None
    on_time = store.conn.execute(
        "SELECT value FROM feedback WHERE event_id = 'shown' AND on_time = 1"
    ).fetchall()
    assert [r["value"] for r in on_time] == [0.8]  # the reward sent before activation does not count
    assert client.post(f"{V1}/events/unknown/activate").status_code == 204  # as Personalizer: unmatched


def test_the_reward_wait_time_sets_when_events_close(tmp_path: Path) -> None:
    client, _ = make_client(tmp_path)
    client.put(f"{PREVIEW}/configurations/service", headers=ADMIN, json={"rewardWaitTime": "PT7M"})
    before = time.time()
    client.post(f"{V1}/rank", json=rank_body(eventId="waits"))
    decision = store_of(client).find_decision("waits")
    assert decision.closes_at - before == pytest.approx(420, abs=5)


# -- multi-slot ---------------------------------------------------------------------------


MULTI = {
    "contextFeatures": CONTEXT,
    "actions": ACTIONS,
    "slots": [
        {"id": "main", "baselineAction": "tripod"},
        {"id": "side", "baselineAction": "bag", "excludedActions": ["sd-card"]},
    ],
}


@pytest.mark.parametrize("seed", range(6))
def test_multi_slot_answers_one_distinct_action_per_slot_honouring_slot_exclusions(
    pclient: FlaskClient, seed: int
) -> None:
    response = pclient.post(f"{V1}/multislot/rank", json={**MULTI, "eventId": f"m{seed}"})
    assert response.status_code == 201
    slots = response.get_json()["slots"]
    assert [s["id"] for s in slots] == ["main", "side"]
    chosen = [s["rewardActionId"] for s in slots]
    assert len(set(chosen)) == 2 and chosen[1] != "sd-card"
    assert (
        pclient.post(
            f"{V1}/multislot/events/m{seed}/reward", json={"reward": [{"slotId": "side", "value": 1}]}
        ).status_code
        == 204
    )
    feedback = store_of(pclient).conn.execute(
        "SELECT action_id FROM feedback WHERE event_id = ?", (f"m{seed}",)
    )
    assert [r["action_id"] for r in feedback] == [chosen[1]]


def test_a_reward_for_a_slot_the_event_did_not_rank_is_unmatched_and_the_others_count(
    pclient: FlaskClient,
) -> None:
    ranked = pclient.post(f"{V1}/multislot/rank", json={**MULTI, "eventId": "ms"}).get_json()
    body = {"reward": [{"slotId": "main", "value": 1}, {"slotId": "nope", "value": 1}]}
    response = pclient.post(f"{V1}/multislot/events/ms/reward", json=body)
    assert response.status_code == 204  # as Personalizer answered
    rows = store_of(pclient).conn.execute("SELECT action_id FROM feedback").fetchall()
    assert [r["action_id"] for r in rows] == [ranked["slots"][0]["rewardActionId"]]
    assert 'xsell_personalizer_unmatched_total{call="slot"} 1.0' in pclient.get("/metrics").get_data(
        as_text=True
    )


# -- learning modes and exploration ---------------------------------------------------------


def test_apprentice_mode_serves_the_baseline_with_probability_one(tmp_path: Path) -> None:
    client, _ = make_client(tmp_path)
    client.put(f"{PREVIEW}/configurations/service", headers=ADMIN, json={"learningMode": "Apprentice"})
    single = client.post(f"{V1}/rank", json=rank_body(excludedActions=["sd-card"])).get_json()
    assert single["rewardActionId"] == "tripod"  # the first action not excluded
    assert single["ranking"][0] == {"id": "tripod", "probability": 1.0}
    multi = client.post(f"{V1}/multislot/rank", json=MULTI).get_json()
    assert [s["rewardActionId"] for s in multi["slots"]] == ["tripod", "bag"]
    logged = store_of(client).find_decision(multi["eventId"])
    assert [c.probability for c in logged.choices] == [1.0, 1.0]


def test_logging_only_mode_learns_nothing(tmp_path: Path) -> None:
    client, settings = make_client(tmp_path, reward_window_seconds=0.01)
    client.put(f"{PREVIEW}/configurations/service", headers=ADMIN, json={"learningMode": "LoggingOnly"})
    learner, store = build_learner(settings)
    learner.start()
    client.post(f"{V1}/rank", json=rank_body(eventId="logged"))
    assert learner.step(now=time.time() + 60) == 0
    client.put(f"{PREVIEW}/configurations/service", headers=ADMIN, json={"learningMode": "Online"})
    learner.live.ttl_seconds = 0  # type: ignore[union-attr]
    assert learner.step(now=time.time() + 60) == 1  # it waited, unlearned, for the mode to change


def test_exploration_percentage_gives_every_action_its_share(tmp_path: Path) -> None:
    client, _ = make_client(tmp_path)
    client.put(f"{PREVIEW}/configurations/service", headers=ADMIN, json={"explorationPercentage": 0.3})
    for k in range(5):
        ranking = client.post(f"{V1}/rank", json=rank_body(eventId=f"x{k}")).get_json()["ranking"]
        assert min(r["probability"] for r in ranking) >= 0.1 - 1e-12


# -- configuration ----------------------------------------------------------------------


def test_service_configuration_round_trips_and_reaches_the_learner(tmp_path: Path) -> None:
    client, settings = make_client(tmp_path)
    wanted = {
        "rewardWaitTime": "PT30S",
        "defaultReward": -0.25,
        "rewardAggregation": "earliest",
        "explorationPercentage": 0.05,
        "modelExportFrequency": "PT2M",
        "logRetentionDays": 30,
        "learningMode": "Online",
    }
    put = client.put(
        f"{PREVIEW}/configurations/service?api-version=2022-09-01-preview", headers=ADMIN, json=wanted
    )
    assert put.status_code == 200
    got = client.get(f"{V1}/configurations/service", headers=ADMIN).get_json()
    assert {k: got[k] for k in wanted} == wanted
    assert got["lastConfigurationEditDate"] is not None
    learner, _ = build_learner(settings)
    learner.start()
    learner.step()
    assert learner.rules.default_reward == -0.25 and learner.rules.aggregation == "earliest"


@pytest.mark.parametrize(
    "body",
    [
        {"rewardWaitTime": "PT0S"},
        {"rewardWaitTime": "P5000D"},
        {"modelExportFrequency": "P5000D"},
        {"rewardWaitTime": "soon"},
        {"explorationPercentage": 1.5},
        {"rewardAggregation": "median"},
        {"learningMode": "Sometimes"},
        {"logRetentionDays": 0},
    ],
)
def test_bad_configuration_is_refused_and_changes_nothing(tmp_path: Path, body: dict[str, Any]) -> None:
    client, _ = make_client(tmp_path)
    before = client.get(f"{V1}/configurations/service", headers=ADMIN).get_json()
    response = client.put(f"{V1}/configurations/service", headers=ADMIN, json=body)
    assert response.status_code == 400
    assert error_of(response)["target"] == next(iter(body))
    assert client.get(f"{V1}/configurations/service", headers=ADMIN).get_json() == before


def test_a_policy_change_serves_a_new_model_that_can_be_rolled_back(tmp_path: Path) -> None:
    client, _ = make_client(tmp_path)
    registry = client.application.extensions["xsell"].registry
    first = registry.active().version
    args = "--cb_explore_adf --epsilon 0.3 -q ::"
    put = client.put(f"{V1}/configurations/policy", headers=ADMIN, json={"name": "eps30", "arguments": args})
    assert put.get_json() == {"name": "eps30", "arguments": args}
    assert client.get(f"{V1}/configurations/policy", headers=ADMIN).get_json() == put.get_json()
    assert registry.active().vw_args == args and registry.active().version != first
    assert client.post(f"{V1}/rank", json=rank_body()).status_code == 201
    bad = client.put(
        f"{V1}/configurations/policy", headers=ADMIN, json={"name": "x", "arguments": "--epsilon 2"}
    )
    assert bad.status_code == 400 and registry.active().vw_args == args
    registry.activate(first, actor="test", action="rollback")
    reset = client.delete(f"{V1}/configurations/policy", headers=ADMIN).get_json()
    assert reset["arguments"] == client.application.extensions["xsell"].settings.vw_args


def test_model_export_import_and_reset(pclient: FlaskClient) -> None:
    registry = pclient.application.extensions["xsell"].registry
    exported = pclient.get(f"{V1}/model", headers=ADMIN)
    assert exported.status_code == 200 and exported.content_type == "application/octet-stream"
    original = registry.active()
    assert pclient.delete(f"{V1}/model", headers=ADMIN).status_code == 204
    assert registry.active().version != original.version and registry.active().events_learned == 0
    imported = pclient.put(
        f"{V1}/model", headers=ADMIN, data=exported.data, content_type="application/octet-stream"
    )
    assert imported.status_code == 204
    assert registry.active().sha256 == original.sha256
    junk = pclient.put(
        f"{V1}/model", headers=ADMIN, data=b"not a model", content_type="application/octet-stream"
    )
    assert junk.status_code == 400 and registry.active().sha256 == original.sha256
    properties = pclient.get(f"{V1}/model/properties", headers=ADMIN).get_json()
    assert properties["creationTime"] <= properties["lastModifiedTime"]


def test_logs_properties_and_delete(pclient: FlaskClient) -> None:
    assert pclient.get(f"{V1}/logs/properties", headers=ADMIN).get_json() == {
        "dateRange": {"from": None, "to": None}
    }
    pclient.post(f"{V1}/rank", json=rank_body())
    pclient.post(f"{V1}/rank", json=rank_body())
    found = pclient.get(f"{V1}/logs/properties", headers=ADMIN).get_json()["dateRange"]
    assert found["from"] <= found["to"]
    assert pclient.delete(f"{V1}/logs", headers=ADMIN).status_code == 204
    assert store_of(pclient).conn.execute("SELECT COUNT(*) FROM decisions").fetchone()[0] == 0


# -- keys ---------------------------------------------------------------------------------


def test_the_subscription_key_header_is_checked(tmp_path: Path) -> None:
    client, _ = make_client(tmp_path, api_keys="store-key")
    assert error_of(client.post(f"{V1}/rank", json=rank_body()))["code"] == "Unauthorized"
    wrong = client.post(f"{V1}/rank", json=rank_body(), headers={"Ocp-Apim-Subscription-Key": "guess"})
    assert wrong.status_code == 403
    good = client.post(f"{V1}/rank", json=rank_body(), headers={"Ocp-Apim-Subscription-Key": "store-key"})
    assert good.status_code == 201
    storefront_on_admin = client.get(
        f"{V1}/configurations/service", headers={"Ocp-Apim-Subscription-Key": "store-key"}
    )
    assert storefront_on_admin.status_code == 403
    assert client.get(f"{V1}/configurations/service", headers=ADMIN).status_code == 200


# -- retention ------------------------------------------------------------------------------


def test_log_retention_days_are_applied_by_the_learner(tmp_path: Path) -> None:
    client, settings = make_client(tmp_path)
    client.put(f"{PREVIEW}/configurations/service", headers=ADMIN, json={"logRetentionDays": 1})
    client.post(f"{V1}/rank", json=rank_body(eventId="old"))
    client.post(f"{V1}/rank", json=rank_body(eventId="new"))
    store = store_of(client)
    store.conn.execute("UPDATE decisions SET created_at = created_at - 2 * 86400 WHERE event_id = 'old'")
    learner, _ = build_learner(settings)
    learner.start()
    learner.step()
    remaining = [r[0] for r in store.conn.execute("SELECT event_id FROM decisions")]
    assert remaining == ["new"]


def test_personalizer_decisions_are_evaluated_and_audited_like_any_other(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from scripts.cli import cli

    # Time stands still while the requests run (no reward may miss the 0.05 s window on a
    # slow machine); the evaluation then reads the real clock, past every window.
    started = time.time()
    settings = make_settings(tmp_path, admin_api_keys="admin-key", reward_window_seconds=0.05)
    client = create_app(settings, clock=lambda: started).test_client()
    for k in range(20):
        client.post(f"{V1}/rank", json=rank_body(eventId=f"audit-{k}"))
        client.post(f"{V1}/events/audit-{k}/reward", json={"value": 1.0 if k % 2 else 0.0})
    client.post(f"{V1}/rank", json=rank_body(eventId="pending", deferActivation=True))
    time.sleep(0.1)
    result = CliRunner().invoke(
        cli,
        [
            "evaluate",
            "--log",
            str(settings.resolved_log_path),
            "--policy",
            "uniform",
            "--json",
            "--no-reward-model",
        ],
    )
    assert result.exit_code == 0, result.output
    import json

    report = json.loads(result.stdout)
    logged = next(p for p in report["policies"] if p["policy"] == "logged")
    assert logged["n"] == 20  # the deferred, never activated decision is not among them
    assert logged["estimates"][0]["value"] == pytest.approx(0.5)
    models = CliRunner().invoke(
        cli, ["models", "list", "--json"], env={"XSELL_DATA_DIR": str(settings.data_dir)}
    )
    assert models.exit_code == 0, models.output


# -- evaluations ----------------------------------------------------------------------------


def wait_for(client: FlaskClient, path: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while (found := client.get(path, headers=ADMIN).get_json())["status"] == "Running":
        assert time.monotonic() < deadline, found
        time.sleep(0.05)
    return found


def test_a_v1_evaluation_estimates_known_policies_honestly(tmp_path: Path) -> None:
    client, _ = make_client(tmp_path, reward_window_seconds=0.05)
    start = time.time() - 1
    for k in range(600):
        answer = client.post(f"{V1}/rank", json=rank_body(eventId=f"ev-{k}")).get_json()
        client.post(
            f"{V1}/events/ev-{k}/reward", json={"value": 1.0 if answer["rewardActionId"] == "tripod" else 0.0}
        )
    time.sleep(0.1)
    window = {
        "startTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start)),
        "endTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 2)),
    }
    body = {
        "name": "week",
        **window,
        "policies": [{"name": "eps", "arguments": "--cb_explore_adf --epsilon 0.1"}],
    }
    created = client.post(f"{V1}/evaluations", headers=ADMIN, json=body)
    assert created.status_code == 201
    evaluation_id = created.get_json()["id"]
    assert created.headers["Location"].endswith(f"/evaluations/{evaluation_id}")
    found = wait_for(client, f"{V1}/evaluations/{evaluation_id}")
    assert found["status"] == "Succeeded", found
    results = {r["policySource"]: r["totalSummary"] for r in found["policyResults"]}
    # Only "tripod" pays: the baseline (always the first action, sd-card) earns 0,
    # uniform over three earns 1/3; each interval must hold the truth.
    low, high = results["Random"]["confidenceInterval"]
    assert low <= 1 / 3 <= high, results["Random"]
    assert results["Baseline"]["expectedReward"] == pytest.approx(0.0, abs=1e-9)
    assert results["Online"]["numberOfEvents"] == 600
    assert [e["id"] for e in client.get(f"{V1}/evaluations", headers=ADMIN).get_json()] == [evaluation_id]
    preview = client.get(f"{PREVIEW}/evaluations?api-version=x", headers=ADMIN).get_json()
    assert [e["id"] for e in preview["value"]] == [evaluation_id]

    registry = client.application.extensions["xsell"].registry
    applied = client.post(
        f"{PREVIEW}/configurations/applyFromEvaluation",
        headers=ADMIN,
        json={"evaluationId": evaluation_id, "policyName": "eps"},
    )
    assert applied.status_code == 204
    assert registry.active().vw_args == "--cb_explore_adf --epsilon 0.1"
    assert client.delete(f"{V1}/evaluations/{evaluation_id}", headers=ADMIN).status_code == 204
    assert client.get(f"{V1}/evaluations/{evaluation_id}", headers=ADMIN).status_code == 404


@pytest.mark.parametrize(
    ("body", "target"),
    [
        ({"name": "x", "startTime": "2026-01-02T00:00:00Z", "endTime": "2026-01-01T00:00:00Z"}, None),
        ({"name": "x", "startTime": "yesterday", "endTime": "2026-01-01T00:00:00Z"}, "startTime"),
        (
            {
                "name": "x",
                "startTime": "2026-01-01T00:00:00Z",
                "endTime": "2026-01-02T00:00:00Z",
                "policies": [{"name": "bad", "arguments": "--epsilon 0.1"}],
            },
            "policies",
        ),
    ],
)
def test_bad_evaluations_are_refused(pclient: FlaskClient, body: dict[str, Any], target: str | None) -> None:
    response = pclient.post(f"{V1}/evaluations", headers=ADMIN, json=body)
    assert response.status_code == 400
    if target is not None:
        assert error_of(response)["target"] == target
    assert pclient.get(f"{V1}/evaluations", headers=ADMIN).get_json() == []


def test_an_evaluation_of_an_empty_range_fails_with_a_reason(pclient: FlaskClient) -> None:
    body = {"name": "empty", "startTime": "2020-01-01T00:00:00Z", "endTime": "2020-01-02T00:00:00Z"}
    evaluation_id = pclient.post(f"{V1}/evaluations", headers=ADMIN, json=body).get_json()["id"]
    found = wait_for(pclient, f"{V1}/evaluations/{evaluation_id}")
    assert found["status"] == "Failed" and "no closed decisions" in found["description"]


def test_an_estimate_on_little_evidence_says_its_interval_is_not_reliable() -> None:
    from policies.evaluation.estimators import Estimate
    from policies.evaluation.replay import PolicyReport
    from service.personalizer.evaluations import _result

    online = PolicyReport("logged", (Estimate("on-policy", 0.3, 0.28, 0.32, 2000, 2000.0, 0.95),), 2000)
    thin = PolicyReport("Baseline", (Estimate("SNIPS", 0.0, 0.0, 0.0, 2000, 12.6, 0.95),), 2000)
    rows = {r["policySource"]: r for r in _result([online, thin], [])["policies"]}
    assert "not reliable" in rows["Baseline"]["note"]
    assert rows["Online"]["note"] == ""
