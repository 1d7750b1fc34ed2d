"""Every route's decisions replay through the evaluator to exactly what was served.

A decision is served by a model version, shaped by the request's exclusions and
per-slot controls and by the live learning mode and exploration share. All of it
is logged, so `xsell evaluate` (scripts/evaluate.py: build_candidates, then
policies/evaluation/replay.py) replaying the policy that served each decision must give
each logged slot the very probability that was served, bit for bit; anything
less and its estimates of other policies rest on the wrong propensities.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient

from policies.deciding.vw import VWPolicy
from policies.evaluation.dataset import LoggedDecision
from policies.evaluation.replay import EvaluationOptions, evaluate, replay
from scripts.demo_store import load_demo
from scripts.evaluate import build_candidates
from service.app import create_app
from tests.conftest import make_settings, rank_body

ADMIN = {"Ocp-Apim-Subscription-Key": "admin-key"}
P = "/personalizer/v1.0"
P_ACTIONS = [
    {"id": "sd-card", "features": [{"kind": "storage"}, {"price": 19.9}]},
    {"id": "tripod", "features": [{"kind": "support", "tags": ["photo", "video"]}]},
    {"id": "bag", "features": [{"kind": "carry"}]},
    {"id": "strap", "features": [{"kind": "carry"}, {"price": 9.0}]},
]
P_CONTEXT = [{"user": {"tier": "gold"}}, {"timeOfDay": "morning"}]
RANK_ACTIONS = [
    *rank_body()["actions"],  # type: ignore[misc]
    {"id": "strap", "features": {"offer": {"kind": "carry", "price": 9.0}}},
]
# Requests that vary the context, so the trained model's distributions vary too.
DEVICES = ("mobile", "desktop", "tablet")


def rank_slots(k: int) -> dict[str, Any]:
    """/v1/rank, three named slots, each with controls of its own."""
    return rank_body(
        event_id=f"r{k}",
        context={"shopper": {"device": DEVICES[k % 3]}},
        actions=RANK_ACTIONS,
        excluded_actions=["bag"] if k % 2 else [],
        slots=[
            {"id": "hero", "excluded_actions": ["memory_card"], "baseline_action": "tripod"},
            {"id": "side", "excluded_actions": ["tripod"]},
            {"id": "footer", "baseline_action": "strap"},
        ],
    )


def personalizer_multi(k: int) -> dict[str, Any]:
    return {
        "eventId": f"pm{k}",
        "contextFeatures": [{"user": {"tier": ("gold", "silver", "bronze")[k % 3]}}],
        "actions": P_ACTIONS,
        "slots": [
            {"id": "main", "baselineAction": "tripod", "excludedActions": ["bag"]},
            {"id": "side", "baselineAction": "bag", "excludedActions": ["sd-card", "tripod"]},
        ],
    }


ROUTES: dict[str, Callable[[int], tuple[str, dict[str, Any]]]] = {
    "rank-single": lambda k: (
        "/v1/rank",
        rank_body(
            event_id=f"r{k}",
            context={"shopper": {"device": DEVICES[k % 3]}},
            excluded_actions=["bag"] if k % 2 else [],
        ),
    ),
    "rank-multi-slot": lambda k: ("/v1/rank", rank_slots(k)),
    "offers": lambda k: (
        "/v1/offers",
        {
            "event_id": f"o{k}",
            "cart": [{"sku": ("camera-01", "camera-02", "camera-03")[k % 3]}],
            "device": DEVICES[k % 3],
            "max_offers": 3,
        },
    ),
    "personalizer-rank": lambda k: (
        f"{P}/rank",
        {
            "eventId": f"p{k}",
            "contextFeatures": [{"user": {"tier": ("gold", "silver", "bronze")[k % 3]}}],
            "actions": P_ACTIONS,
            "excludedActions": ["bag"] if k % 2 else [],
        },
    ),
    "personalizer-multi-slot": lambda k: (f"{P}/multislot/rank", personalizer_multi(k)),
}


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Flask]:
    app = create_app(make_settings(tmp_path, admin_api_keys="admin-key"))
    load_demo(app.extensions["xsell"].catalog)
    yield app
    app.extensions["xsell"].store.close()


def serve(client: FlaskClient, route: str, rounds: range) -> list[str]:
    """Send `rounds` requests of one route; return the event ids logged."""
    ids = []
    for k in rounds:
        path, body = ROUTES[route](k)
        response = client.post(path, json=body)
        assert response.status_code in (200, 201), response.get_json()
        answer = response.get_json()
        ids.append(answer.get("event_id") or answer.get("eventId"))
    assert all(ids), "every request was a decision"
    return ids


def train_on(app: Flask, event_ids: list[str]) -> str:
    """Publish a model that learned the decisions (the first-listed offers pay), and serve it."""
    res = app.extensions["xsell"]
    policy = VWPolicy(res.settings.vw_args)
    for event_id in event_ids:
        event = res.store.find_decision(event_id).to_event(())
        favourites = {event.actions[0].id, event.actions[1].id}
        policy.learn(event, [1.0 if c.action_id in favourites else 0.0 for c in event.choices])
    version = res.registry.publish(policy, parent=res.registry.active().version)
    res.served.refresh()
    return version.version


def logged(app: Flask, event_ids: list[str]) -> list[LoggedDecision]:
    store = app.extensions["xsell"].store
    decisions = []
    for event_id in event_ids:
        event = store.find_decision(event_id).to_event(())
        decisions.append(LoggedDecision(event, tuple(float(k == 0) for k in range(len(event.choices)))))
    return decisions


def assert_replays_exactly(app: Flask, decisions: list[LoggedDecision], spec: str) -> None:
    """`spec`, replayed as `xsell evaluate` does, gives every logged slot its logged probability."""
    assert decisions, "no decisions to replay"
    assert all(d.event.choices for d in decisions), "every decision chose something"
    (candidate,) = build_candidates([spec], app.extensions["xsell"].registry)
    for decision in decisions:
        rows = candidate.slot_distributions(decision)
        served = [
            row[decision.action_index(c.action_id)]
            for row, c in zip(rows, decision.event.choices, strict=True)
        ]
        assert served == [c.probability for c in decision.event.choices], decision.event.event_id
        assert rows[0].tolist() == list(decision.event.probabilities), decision.event.event_id
    batch = replay(decisions, build_candidates([spec], app.extensions["xsell"].registry)[0], None)
    assert batch is not None and batch.mask.sum() == sum(len(d.event.choices) for d in decisions)
    assert np.array_equal(batch.p_target[batch.mask], batch.p_log[batch.mask])


@pytest.mark.parametrize("route", list(ROUTES))
def test_every_route_replays_to_exactly_the_served_probabilities(shop: Flask, route: str) -> None:
    client = shop.test_client()
    version = train_on(shop, serve(client, route, range(100, 130)))
    decisions = logged(shop, serve(client, route, range(12)))
    assert {d.event.model_version for d in decisions} == {version}
    # the trained model gives different offers different chances: the check has teeth
    assert any(len(set(d.event.probabilities) - {0.0}) > 1 for d in decisions)
    assert_replays_exactly(shop, decisions, f"model:{version}")
    assert_replays_exactly(shop, decisions, "served")


def test_per_slot_controls_are_logged_and_shape_what_each_slot_could_show(shop: Flask) -> None:
    client = shop.test_client()
    train_on(shop, serve(client, "personalizer-multi-slot", range(100, 130)))
    decisions = logged(shop, serve(client, "personalizer-multi-slot", range(20)))
    assert decisions
    for decision in decisions:
        event = decision.event
        assert event.slot_excluded == (frozenset({"bag"}), frozenset({"sd-card", "tripod"}))
        assert event.baseline == ("tripod", "bag")
        assert event.choices[0].action_id != "bag"
        if len(event.choices) > 1:
            assert event.choices[1].action_id not in {"sd-card", "tripod"}
    # the second slot drew from fewer candidates than the first left it
    assert any(len(d.event.choices) == 2 and d.event.choices[1].probability > 0 for d in decisions)


@pytest.mark.parametrize("route", ["rank-multi-slot", "personalizer-multi-slot", "offers"])
def test_baseline_mode_decisions_replay_to_the_baseline_served(shop: Flask, route: str) -> None:
    client = shop.test_client()
    mode = {"learningMode": "Apprentice"}
    assert client.put(f"{P}/configurations/service", headers=ADMIN, json=mode).status_code == 200
    decisions = logged(shop, serve(client, route, range(8)))
    assert decisions
    for decision in decisions:
        assert decision.event.served_baseline
        assert {c.probability for c in decision.event.choices} == {1.0}
    shown = {tuple(c.action_id for c in d.event.choices) for d in decisions}
    if route == "rank-multi-slot":  # each slot its own baseline, else the first it may show
        assert shown == {("tripod", "memory_card", "strap")}
    if route == "personalizer-multi-slot":
        assert shown == {("tripod", "bag")}
    assert_replays_exactly(shop, decisions, "served")
    assert_replays_exactly(shop, decisions, "baseline")


@pytest.mark.parametrize("route", ["rank-multi-slot", "personalizer-multi-slot", "personalizer-rank"])
def test_the_exploration_share_served_is_logged_and_replayed(shop: Flask, route: str) -> None:
    client = shop.test_client()
    version = train_on(shop, serve(client, route, range(100, 130)))
    share = {"explorationPercentage": 0.3}
    assert client.put(f"{P}/configurations/service", headers=ADMIN, json=share).status_code == 200
    decisions = logged(shop, serve(client, route, range(10)))
    assert decisions
    assert {d.event.exploration_share for d in decisions} == {0.3}
    assert_replays_exactly(shop, decisions, f"model:{version}")


def test_replaying_the_served_policy_estimates_exactly_what_the_log_earned(shop: Flask) -> None:
    client = shop.test_client()
    train_on(shop, serve(client, "rank-multi-slot", range(100, 130)))
    decisions = logged(shop, serve(client, "rank-multi-slot", range(40)))
    candidates = build_candidates(["served"], shop.extensions["xsell"].registry)
    logged_report, served_report = evaluate(decisions, candidates, EvaluationOptions(reward_model=None))
    (on_policy,) = logged_report.estimates
    ips = next(e for e in served_report.estimates if e.estimator == "IPS")
    assert served_report.n == len(decisions) == 40
    assert ips.value == pytest.approx(on_policy.value, abs=1e-12)


def test_decisions_logged_before_slot_controls_existed_load_as_served_without_them(shop: Flask) -> None:
    client = shop.test_client()
    version = train_on(shop, serve(client, "rank-single", range(100, 130)))
    ids = serve(client, "rank-single", range(6))
    store = shop.extensions["xsell"].store
    # what migration m007 leaves in older rows
    store.conn.execute(
        "UPDATE decisions SET slot_excluded = NULL, baseline = NULL, exploration_share = NULL,"
        " served_baseline = NULL"
    )
    decisions = logged(shop, ids)
    assert decisions
    for decision in decisions:
        event = decision.event
        assert (event.slot_excluded, event.baseline, event.exploration_share, event.served_baseline) == (
            (),
            (),
            0.0,
            False,
        )
    assert_replays_exactly(shop, decisions, f"model:{version}")
