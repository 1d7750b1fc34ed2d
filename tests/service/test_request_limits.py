"""One request can cost a worker only bounded work: features, features x actions, interactions.

Each oversized shape below was accepted before the limits (the 44,000-feature body
hung a worker past gunicorn's 30 s timeout); now it is refused with 413, naming the
limit and the field, before VW sees it, and nothing is logged.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
from flask import Flask
from flask.testing import FlaskClient

from policies.learning.learner import Learner, LearnerOptions
from policies.learning.rewards import RewardRules
from service.app import create_app
from service.limits import feature_limits
from tests.conftest import demo_shop, make_settings, rank_body
from tests.logs.helpers import decision

V1 = "/personalizer/v1.0"


def features(n: int, prefix: str = "f", per_namespace: int = 120) -> dict[str, dict[str, Any]]:
    """`n` string features spread over namespaces of at most `per_namespace` (the schema allows 128)."""
    return {
        f"{prefix}{k}": {f"x{i}": f"v{i}" for i in range(k * per_namespace, min(n, (k + 1) * per_namespace))}
        for k in range(-(-n // per_namespace))
    }


def actions(n: int, each: int) -> list[dict[str, Any]]:
    return [{"id": f"a{j}", "features": features(each, prefix="i")} for j in range(n)]


def post_raw(client: FlaskClient, path: str, raw: bytes) -> Any:
    return client.post(path, data=raw, content_type="application/json")


def decisions(app: Flask) -> int:
    return int(app.extensions["xsell"].store.conn.execute("SELECT count(*) FROM decisions").fetchone()[0])


def refused(response: Any, limit: str, field: str) -> None:
    assert response.status_code == 413, response.get_data(as_text=True)[:300]
    payload = response.get_json()
    assert payload["error"] == "limit_exceeded"
    [detail] = payload["details"]
    assert (detail["limit"], detail["field"]) == (limit, field)
    assert limit in payload["message"]


# 44,000 list items over 32 namespaces, 50 actions: the request, in 220 KB.
ATTACK = {
    "context": {f"n{k}": {f"l{m}": [str(i) for i in range(55)] for m in range(25)} for k in range(32)},
    "actions": [{"id": f"a{j}"} for j in range(50)],
}


def test_the_44000_feature_request_is_refused_naming_the_limit(client: FlaskClient, app: Flask) -> None:
    assert sum(len(items) for ns in ATTACK["context"].values() for items in ns.values()) == 44_000
    raw = orjson.dumps(ATTACK)
    assert len(raw) < 256 * 1024  # within the body limit: the features are the problem
    refused(post_raw(client, "/v1/rank", raw), "XSELL_MAX_CONTEXT_FEATURES", "context")
    assert decisions(app) == 0


def test_features_times_actions_is_bounded(client: FlaskClient, app: Flask) -> None:
    # 700 context features are allowed; copied into 50 action lines they are 35,550.
    body = {"context": features(700), "actions": actions(50, 10)}
    refused(client.post("/v1/rank", json=body), "XSELL_MAX_FEATURES_X_ACTIONS", "actions")
    assert decisions(app) == 0


def test_one_action_with_too_many_features_is_named(client: FlaskClient) -> None:
    body = {"actions": [{"id": "small"}, {"id": "big", "features": features(300, prefix="i")}]}
    refused(client.post("/v1/rank", json=body), "XSELL_MAX_ACTION_FEATURES", "actions[1].features")


def test_quadratic_interactions_are_bounded(client: FlaskClient, app: Flask) -> None:
    # Within every feature count, but -q :: squares each line: 16 x 1,281^2 = 26.3 M pairs.
    body = {"context": features(1024), "actions": actions(16, 256)}
    refused(client.post("/v1/rank", json=body), "XSELL_MAX_INTERACTION_PAIRS", "actions")
    assert decisions(app) == 0


@pytest.fixture
def cubic_app(tmp_path: Path) -> Iterator[Flask]:
    app = create_app(make_settings(tmp_path / "cubic", vw_args="--cb_explore_adf --epsilon 0.1 --cubic :::"))
    yield app
    app.extensions["xsell"].store.close()


def test_the_served_models_interactions_set_the_cost(client: FlaskClient, cubic_app: Flask) -> None:
    # A request -q :: takes easily costs 20 x 111^3 = 27 M triples under --cubic :::.
    body = {"context": features(100), "actions": actions(20, 10)}
    assert client.post("/v1/rank", json=body).status_code == 200
    refused(cubic_app.test_client().post("/v1/rank", json=body), "XSELL_MAX_INTERACTION_PAIRS", "actions")


def test_a_large_real_storefront_request_is_within_the_limits(client: FlaskClient) -> None:
    body = {"context": features(300), "actions": actions(50, 30)}
    response = client.post("/v1/rank", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)[:300]


def test_the_limits_are_settings(tmp_path: Path) -> None:
    app = demo_shop(tmp_path, max_context_features=2)
    try:
        client = app.test_client()
        assert client.post("/v1/rank", json=rank_body()).status_code == 200  # device and segment
        crowded = rank_body(context={"shopper": {"device": "mobile", "segment": "pro", "tier": "gold"}})
        refused(client.post("/v1/rank", json=crowded), "XSELL_MAX_CONTEXT_FEATURES", "context")
        refused(
            client.post("/v1/offers", json={"cart": [{"sku": "camera-01"}]}),
            "XSELL_MAX_CONTEXT_FEATURES",
            "body",
        )
    finally:
        app.extensions["xsell"].store.close()


# -- Personalizer ----------------------------------------------------------------------


def personalizer_refused(response: Any, target: str) -> None:
    assert response.status_code == 413, response.get_data(as_text=True)[:300]
    error = response.get_json()["error"]
    assert (error["code"], error["innerError"]["code"], error["target"]) == (
        "PayloadTooLarge",
        "limit_exceeded",
        target,
    )


def test_personalizer_feature_lists_are_bounded(client: FlaskClient, app: Flask) -> None:
    # Personalizer feature objects had no length cap: one list of 40,000 strings.
    body = {"contextFeatures": [{"tags": ["ab"] * 40_000}], "actions": [{"id": "a"}]}
    personalizer_refused(post_raw(client, f"{V1}/rank", orjson.dumps(body)), "contextFeatures")
    # 500 context features are allowed; in 50 lines of 250 action features they are 37,550.
    context = [{"u": {f"f{i}": i for i in range(250)}, "v": {f"f{i}": i for i in range(250)}}]
    wide = [{"id": f"a{j}", "features": [{"item": {f"f{i}": i for i in range(250)}}]} for j in range(50)]
    personalizer_refused(
        client.post(f"{V1}/rank", json={"contextFeatures": context, "actions": wide}), "actions"
    )
    multi = {
        "contextFeatures": [{"tags": ["ab"] * 40_000}],
        "actions": [{"id": "a"}, {"id": "b"}],
        "slots": [{"id": "top", "baselineAction": "a"}],
    }
    personalizer_refused(
        client.post("/personalizer/v1.1-preview.3/multislot/rank", json=multi), "contextFeatures"
    )
    assert decisions(app) == 0


@pytest.mark.parametrize(
    ("context", "target"),
    [
        ([{"n": 10**400}], "contextFeatures"),  # float() of it raised OverflowError: a 500
        ([{"user": {"n": -(10**400)}}], "contextFeatures"),
        ([{"user": {"list": [1, 10**400]}}], "contextFeatures"),
        ([{"_ignored": 10**400}], "contextFeatures"),  # ignored, but orjson could not fingerprint it
        ([{"n": 2**64}], "contextFeatures"),
        ([{"user": {"n": 2**60}}], "contextFeatures[0].user.n"),  # a float would round it
    ],
)
def test_personalizer_integers_beyond_a_float_are_a_4xx(
    client: FlaskClient, context: list[Any], target: str
) -> None:
    body = {"contextFeatures": context, "actions": [{"id": "a"}, {"id": "b"}], "eventId": "big-number"}
    response = client.post(f"{V1}/rank", json=body)
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert response.get_json()["error"]["target"] == target


def test_metrics_count_the_logged_decisions_the_learner_skipped(client: FlaskClient, app: Flask) -> None:
    # A decision logged before the limits existed: 5,000 context features.
    res = app.extensions["xsell"]
    now = time.time()
    huge = replace(decision("old-huge", created_at=now - 100, window=10), context=features(5000))
    res.store.record_decision(huge)
    res.store.record_decision(decision("old-small", created_at=now - 100, window=10))
    learner = Learner(
        res.store,
        res.registry,
        RewardRules(),
        LearnerOptions(res.settings.vw_args, grace_seconds=0.0, limits=feature_limits(res.settings)),
    )
    learner.start()
    learner.step(now=now)
    assert learner.policy is not None and learner.policy.events_learned == 1
    text = client.get("/metrics").get_data(as_text=True)
    assert "xsell_learner_skipped_oversized_total 1.0" in text
