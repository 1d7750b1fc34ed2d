"""Experiments against a holdout over real HTTP, a real log and real VW models.

Arms change which policy serves; every decision logs its arm, and replays through the
evaluator to exactly the probabilities served, whichever arm served it.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flask import Flask
from flask.testing import FlaskClient

from logs.db import LogUnavailable
from logs.experiment_store import ASSIGNS_WITHIN_SECONDS, ExperimentStore
from logs.store import LogStore
from scripts.demo_store import load_demo
from service.app import create_app
from service.experiment_arms import arms
from tests.conftest import make_settings, rank_body
from tests.service.test_replay_exact import assert_replays_exactly, logged, serve, train_on

ADMIN = {"Authorization": "Bearer admin-key"}


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def shop(tmp_path: Path, clock: Clock) -> Iterator[Flask]:
    # a fixed server secret: assignments are the same on every run
    settings = make_settings(tmp_path, admin_api_keys="admin-key", shopper_id_secret="experiments-test")
    app = create_app(settings, clock=clock)
    load_demo(app.extensions["xsell"].catalog)
    yield app
    app.extensions["xsell"].store.close()


def start(client: FlaskClient, arms: list[dict[str, Any]], experiment_id: str = "exp-1") -> dict[str, Any]:
    response = client.post("/v1/experiments", headers=ADMIN, json={"id": experiment_id, "arms": arms})
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def four_arms(frozen: str) -> list[dict[str, Any]]:
    return [
        {"name": "bandit", "policy": "model", "share": 0.25},
        {"name": "frozen", "policy": "frozen", "share": 0.25, "version": frozen},
        {"name": "popular", "policy": "most-popular", "share": 0.25},
        {"name": "holdout", "policy": "no-offer", "share": 0.25},
    ]


@pytest.mark.parametrize("route", ["rank-single", "rank-multi-slot", "offers"])
def test_every_arm_replays_to_exactly_the_served_probabilities(shop: Flask, route: str) -> None:
    client = shop.test_client()
    first = shop.extensions["xsell"].registry.active().version
    version = train_on(shop, serve(client, route, range(100, 130)))
    start(client, four_arms(first))
    ids = serve(client, route, range(80))
    store = shop.extensions["xsell"].store
    served = [i for i in ids if store.find_decision(i) is not None]
    decisions = logged(shop, served)
    arms = {d.event.event_id: store.find_decision(d.event.event_id).experiment["arm"] for d in decisions}
    assert set(arms.values()) == {"bandit", "frozen", "popular"}  # every serving arm is covered
    by_arm = {arm: [d for d in decisions if arms[d.event.event_id] == arm] for arm in set(arms.values())}
    assert {d.event.model_version for d in by_arm["bandit"]} == {version}
    assert {d.event.model_version for d in by_arm["frozen"]} == {first}
    assert all(d.event.served_baseline for d in by_arm["popular"])
    assert all(not d.event.served_baseline for d in by_arm["bandit"] + by_arm["frozen"])
    assert_replays_exactly(shop, decisions, "served")
    # the holdout's requests were answered with nothing and logged among its holdouts
    held = [i for i in ids if store.find_decision(i) is None]
    assert held and all(ExperimentStore(store).is_holdout(i) for i in held)


def test_an_experiment_on_a_route_logs_its_arm_and_the_holdout_answers_nothing(shop: Flask) -> None:
    client = shop.test_client()
    start(
        client,
        [{"name": "a", "policy": "model", "share": 0.5}, {"name": "h", "policy": "no-offer", "share": 0.5}],
    )
    seen: dict[str, set[str]] = {}
    for k in range(40):
        shopper = f"shopper-{k % 8}"
        answer = client.post("/v1/rank", json=rank_body(shopper_id=shopper)).get_json()
        decision = shop.extensions["xsell"].store.find_decision(answer["event_id"])
        arm = decision.experiment["arm"] if decision else "h"
        if decision is None:
            assert answer["chosen"] == [] and answer["choices"] == []
        else:
            assert decision.experiment == {"id": "exp-1", "arm": "a", "unit": "shopper"}
        seen.setdefault(shopper, set()).add(arm)
    assert all(len(arms) == 1 for arms in seen.values())  # sticky per shopper
    assert {next(iter(a)) for a in seen.values()} == {"a", "h"}
    offers = [
        client.post("/v1/offers", json={"cart": [{"sku": "camera-01"}], "shopper_id": f"s{k}"}).get_json()
        for k in range(20)
    ]
    assert any(o["no_offer"] == "holdout" and o["offers"] == [] for o in offers)
    assert any(o["offers"] for o in offers)


def feedback_for(client: FlaskClient, answer: dict[str, Any], k: int) -> None:
    if not answer.get("chosen"):
        return
    if k % 3 == 0:
        client.post(f"/v1/events/{answer['event_id']}/feedback", json={"signal": "click"})
    if k % 6 == 0:
        client.post(f"/v1/events/{answer['event_id']}/feedback", json={"signal": "purchase", "value": 30.0})
    if k % 5 == 1:
        client.post(f"/v1/events/{answer['event_id']}/feedback", json={"signal": "dismiss"})


def test_results_count_closed_windows_only_and_reproduce_from_a_copied_log(
    shop: Flask, clock: Clock, tmp_path: Path
) -> None:
    client = shop.test_client()
    start(
        client,
        [{"name": "a", "policy": "model", "share": 0.5}, {"name": "h", "policy": "no-offer", "share": 0.5}],
    )
    for k in range(200):
        feedback_for(client, client.post("/v1/rank", json=rank_body(event_id=f"r{k}")).get_json(), k)
    open_results = client.get("/v1/experiments/exp-1", headers=ADMIN).get_json()["results"]
    assert [a["decisions"] for a in open_results["arms"]] == [0, 0]  # no window has ended yet
    clock.now += 61  # every reward window has ended
    results = client.get("/v1/experiments/exp-1", headers=ADMIN).get_json()["results"]
    a, h = results["arms"]
    assert a["decisions"] + h["decisions"] == 200 and a["decisions"] > 50 and h["decisions"] > 50
    assert results["control"] == "h" and "lift" in a and "lift" not in h
    assert a["metrics"]["click_through"]["estimate"] > 0 and h["metrics"]["click_through"]["estimate"] == 0
    ctr = a["metrics"]["click_through"]
    assert ctr["low"] < ctr["estimate"] < ctr["high"]
    assert a["lift"]["revenue_per_decision"]["estimate"] == a["metrics"]["revenue_per_decision"]["estimate"]
    assert results["sample_ratio"]["alarm"] is False
    # the results are a function of the log alone: a copy of the file gives the same
    store = shop.extensions["xsell"].store
    store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    copy = tmp_path / "copy.db"
    shutil.copy(store.path, copy)
    copied = LogStore(copy)
    try:
        experiments = ExperimentStore(copied)
        assert experiments.results(experiments.get("exp-1"), clock.now) == results
    finally:
        copied.close()


def test_a_rigged_split_raises_the_sample_ratio_alarm(shop: Flask, clock: Clock) -> None:
    client = shop.test_client()
    start(
        client,
        [{"name": "a", "policy": "model", "share": 0.5}, {"name": "h", "policy": "no-offer", "share": 0.5}],
    )
    for k in range(300):
        client.post("/v1/rank", json=rank_body(event_id=f"r{k}"))
    clock.now += 61
    fair = client.get("/v1/experiments/exp-1", headers=ADMIN).get_json()["results"]["sample_ratio"]
    assert fair["alarm"] is False
    # a cache in front of the holdout arm lost most of its traffic: that shows in the log
    shop.extensions["xsell"].store.conn.execute(
        "DELETE FROM experiment_holdouts WHERE rowid IN (SELECT rowid FROM experiment_holdouts LIMIT 100)"
    )
    rigged = client.get("/v1/experiments/exp-1", headers=ADMIN).get_json()["results"]["sample_ratio"]
    assert rigged["alarm"] is True and rigged["p_value"] < rigged["alarm_below"] == 0.001


def test_stop_and_ship_are_recorded_in_the_model_history(shop: Flask) -> None:
    client = shop.test_client()
    first = shop.extensions["xsell"].registry.active().version
    newer = train_on(shop, serve(client, "rank-single", range(100, 110)))
    start(
        client,
        [{"name": "a", "policy": "model", "share": 0.5}, {"name": "h", "policy": "no-offer", "share": 0.5}],
    )
    assert (
        client.post(
            "/v1/experiments", headers=ADMIN, json={"id": "exp-2", "arms": four_arms(first)}
        ).status_code
        == 409
    )
    stopped = client.post("/v1/experiments/exp-1/stop", headers=ADMIN, json={"reason": "enough"})
    assert stopped.status_code == 200 and stopped.get_json()["status"] == "stopped"
    assert client.post("/v1/experiments/exp-1/stop", headers=ADMIN, json={}).status_code == 409
    answer = client.post("/v1/rank", json=rank_body()).get_json()
    assert shop.extensions["xsell"].store.find_decision(answer["event_id"]).experiment is None
    start(client, four_arms(first), "exp-2")
    refused = client.post("/v1/experiments/exp-2/ship", headers=ADMIN, json={"arm": "holdout"})
    assert refused.status_code == 422 and refused.get_json()["details"][0]["field"] == "arm"
    shipped = client.post(
        "/v1/experiments/exp-2/ship", headers=ADMIN, json={"arm": "frozen", "reason": "won"}
    )
    assert shipped.status_code == 200 and shipped.get_json()["shipped_arm"] == "frozen"
    assert shop.extensions["xsell"].registry.active().version == first != newer
    history = client.get("/v1/models", headers=ADMIN).get_json()["changes"]
    actions = [c["action"] for c in history]
    assert actions[:5] == [
        "experiment-ship",
        "activate",
        "experiment-start",
        "experiment-stop",
        "experiment-start",
    ]
    # the frozen arm's version is named in the history, so retention keeps its file
    assert history[2]["version"] == first and "frozen frozen 0.25" in history[2]["reason"]
    assert "exp-2 shipped arm frozen: won" in history[0]["reason"]
    listed = client.get("/v1/experiments", headers=ADMIN).get_json()["experiments"]
    assert [(e["id"], e["status"]) for e in listed] == [("exp-2", "shipped"), ("exp-1", "stopped")]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"id": "bad id!", "arms": []}, "id"),
        ({"id": "e", "arms": [{"name": "a", "policy": "model", "share": 1.0}]}, "arms"),
        ({"id": "e", "arms": [{"name": "a", "policy": "model", "share": 0.5}] * 2}, "arms"),
        (
            {
                "id": "e",
                "arms": [
                    {"name": "a", "policy": "model", "share": 0.6},
                    {"name": "b", "policy": "no-offer", "share": 0.6},
                ],
            },
            "arms",
        ),
        (
            {
                "id": "e",
                "arms": [
                    {"name": "a", "policy": "frozen", "share": 0.5},
                    {"name": "b", "policy": "no-offer", "share": 0.5},
                ],
            },
            "arms.0",
        ),
        (
            {
                "id": "e",
                "arms": [
                    {"name": "a", "policy": "bandit", "share": 0.5},
                    {"name": "b", "policy": "no-offer", "share": 0.5},
                ],
            },
            "arms.0.policy",
        ),
        (
            {
                "id": "e",
                "arms": [
                    {"name": "a", "policy": "model", "share": -1},
                    {"name": "b", "policy": "no-offer", "share": 0.5},
                ],
            },
            "arms.0.share",
        ),
        (
            {
                "id": "e",
                "arms": [
                    {"name": "a", "policy": "frozen", "version": "v-nope", "share": 0.5},
                    {"name": "b", "policy": "no-offer", "share": 0.5},
                ],
            },
            "arms.0.version",
        ),
        (
            {
                "id": "e",
                "alpha": 0.9,
                "arms": [
                    {"name": "a", "policy": "model", "share": 0.5},
                    {"name": "b", "policy": "no-offer", "share": 0.5},
                ],
            },
            "alpha",
        ),
    ],
)
def test_bad_experiments_get_a_422_naming_the_field(shop: Flask, body: dict[str, Any], field: str) -> None:
    response = shop.test_client().post("/v1/experiments", headers=ADMIN, json=body)
    assert response.status_code == 422, response.get_json()
    assert field in [d["field"] for d in response.get_json()["details"]]
    assert shop.test_client().get("/v1/experiments", headers=ADMIN).get_json()["experiments"] == []


def test_experiments_need_an_admin_key_and_unknown_ones_are_404(shop: Flask) -> None:
    client = shop.test_client()
    assert client.get("/v1/experiments").status_code == 401
    missing = client.get("/v1/experiments/nope", headers=ADMIN)
    assert missing.status_code == 404 and missing.get_json()["details"][0]["field"] == "experiment_id"


def test_a_holdout_experiment_on_simulated_shoppers_shows_the_bandits_lift(shop: Flask, clock: Clock) -> None:
    """Shoppers click a shown offer three times in ten and buy one time in ten; with no offer they cannot."""
    client = shop.test_client()
    start(
        client,
        [
            {"name": "bandit", "policy": "model", "share": 0.5},
            {"name": "none", "policy": "no-offer", "share": 0.5},
        ],
    )
    rng = np.random.default_rng(15)
    for k in range(600):
        answer = client.post("/v1/rank", json=rank_body(shopper_id=f"shopper-{k}")).get_json()
        if answer["chosen"] and rng.random() < 0.3:
            client.post(f"/v1/events/{answer['event_id']}/feedback", json={"signal": "click"})
            if rng.random() < 0.3:
                client.post(
                    f"/v1/events/{answer['event_id']}/feedback", json={"signal": "purchase", "value": 25.0}
                )
    clock.now += 61
    results = client.get("/v1/experiments/exp-1", headers=ADMIN).get_json()["results"]
    bandit = next(a for a in results["arms"] if a["arm"] == "bandit")
    lift = bandit["lift"]["click_through"]
    assert 0 < lift["low"] < lift["estimate"] < lift["high"]  # positive, and the interval excludes zero
    assert bandit["lift"]["revenue_per_decision"]["low"] > 0
    assert not results["sample_ratio"]["alarm"]


def test_a_frozen_arm_whose_model_file_is_gone_is_refused(shop: Flask) -> None:
    client = shop.test_client()
    registry = shop.extensions["xsell"].registry
    first = registry.active().version
    train_on(shop, serve(client, "rank-single", range(100, 105)))
    (registry.model_dir / registry.find(first).path).unlink()
    response = client.post("/v1/experiments", headers=ADMIN, json={"id": "x", "arms": four_arms(first)})
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["details"][0]["field"] == "arms.1.version"
    assert client.get("/v1/experiments", headers=ADMIN).get_json()["experiments"] == []


@pytest.mark.parametrize("path", ["/v1/rank", "/v1/offers"])
def test_an_anonymous_shoppers_arm_sticks_to_their_session(shop: Flask, path: str) -> None:
    client = shop.test_client()
    start(
        client,
        [{"name": "a", "policy": "model", "share": 0.5}, {"name": "h", "policy": "no-offer", "share": 0.5}],
    )
    body = rank_body() if path == "/v1/rank" else {"cart": [{"sku": "camera-01"}]}
    store = shop.extensions["xsell"].store
    held: dict[str, set[bool]] = {}
    for k in range(60):
        session = f"session-{k % 6}"
        answer = client.post(path, json=body | {"session_id": session}).get_json()
        decision = store.find_decision(answer["event_id"])
        if decision is not None:
            assert decision.experiment["unit"] == "session"
        held.setdefault(session, set()).add(decision is None)
    assert all(len(outcomes) == 1 for outcomes in held.values())
    assert {next(iter(o)) for o in held.values()} == {True, False}


def test_shipping_a_frozen_arm_whose_version_is_gone_is_refused_and_the_experiment_runs_on(
    shop: Flask,
) -> None:
    client = shop.test_client()
    first = shop.extensions["xsell"].registry.active().version
    train_on(shop, serve(client, "rank-single", range(100, 110)))
    start(client, four_arms(first), "exp-gone")
    store = shop.extensions["xsell"].store
    with store.conn:  # as if the version's row were lost (a restore from an older copy)
        store.conn.execute("DELETE FROM models WHERE version = ?", (first,))
    refused = client.post("/v1/experiments/exp-gone/ship", headers=ADMIN, json={"arm": "frozen"})
    assert refused.status_code == 422 and refused.get_json()["details"][0]["field"] == "arm"
    listed = client.get("/v1/experiments", headers=ADMIN).get_json()["experiments"]
    assert [(e["id"], e["status"]) for e in listed] == [("exp-gone", "running")]


TWO_MODEL_ARMS = [
    {"name": "a", "policy": "model", "share": 0.5},
    {"name": "b", "policy": "model", "share": 0.5},
]


def test_a_worker_that_cannot_read_the_experiment_for_a_minute_stops_assigning(
    shop: Flask, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """So every decision of an experiment is made before its end plus ASSIGNS_WITHIN_SECONDS,
    the span its results read (logs/experiment_store.py)."""
    client = shop.test_client()
    start(client, TWO_MODEL_ARMS)
    res = shop.extensions["xsell"]
    source = arms(res)
    ticks = [1000.0]
    source.monotonic = lambda: ticks[0]
    source.refresh()
    assert source.assign(None, None, "e1") is not None

    def busy(self: ExperimentStore) -> None:
        raise LogUnavailable("the log is busy")

    monkeypatch.setattr(ExperimentStore, "running", busy)
    ticks[0] += ASSIGNS_WITHIN_SECONDS - 1  # read again, and failed: the last known still serves
    assert source.assign(None, None, "e2") is not None
    ticks[0] += 2  # over a minute since the last read that worked
    assert source.assign(None, None, "e3") is None
    assert client.post("/v1/rank", json=rank_body()).get_json() is not None  # serving goes on
    monkeypatch.undo()
    ticks[0] += 1  # read again, and it worked
    assert source.assign(None, None, "e4") is not None


def test_results_count_what_a_worker_assigned_after_the_end_before_it_knew(
    shop: Flask, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = shop.test_client()
    started = start(client, TWO_MODEL_ARMS)
    store = ExperimentStore(shop.extensions["xsell"].store)
    view = store.get(started["id"])  # what a worker read while it ran
    for k in range(3):
        clock.now += 1
        assert client.post("/v1/rank", json=rank_body(event_id=f"in-{k}")).status_code == 200
    response = client.post(f"/v1/experiments/{started['id']}/stop", headers=ADMIN, json={"reason": "done"})
    assert response.status_code == 200, response.get_json()
    # A worker whose last read came before the stop goes on assigning until it reads again.
    monkeypatch.setattr(ExperimentStore, "running", lambda self: view)
    arms(shop.extensions["xsell"]).refresh()
    clock.now += ASSIGNS_WITHIN_SECONDS - 5
    assert client.post("/v1/rank", json=rank_body(event_id="late")).status_code == 200
    monkeypatch.undo()
    late = shop.extensions["xsell"].store.find_decision("late")
    assert late is not None and late.experiment is not None and late.experiment["id"] == started["id"]
    clock.now += 10_000  # every window closed
    counts = store.arm_counts(store.get(started["id"]), clock.now)
    assert sum(c.clicks.n for c in counts) == 4
