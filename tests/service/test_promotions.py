"""Promotions as operator rules (#15): boosts and campaigns' shares are mixed into the served
distribution in the open (logged, replayed exactly), caps remove a campaign's products once
every worker's impressions in the period reach them, and bad definitions are 422s."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from logs.rollup_queries import RollupReader
from policies.evaluation.dataset import LoggedDecision
from policies.offers.catalog import Product
from scripts.demo_store import load_demo
from scripts.devtools.learning_loop import Clock
from scripts.evaluate import build_candidates
from service.app import create_app
from tests.conftest import make_settings
from tests.service.test_replay_exact import assert_replays_exactly, logged, train_on

ADMIN = {"Authorization": "Bearer admin-key"}
SKUS = [f"p{k}" for k in range(10)]  # p0 and p1 are what the trained model likes
PROMOTED = "p9"
START = 1_800_000_000.0  # a whole hour: the hourly periods below begin here


def products() -> list[Product]:
    kinds = ["bag", "strap", "tripod", "lens", "flash"]
    return [Product(s, s.upper(), kinds[k % 5], 10.0 + k, "photo", (), 5) for k, s in enumerate(SKUS)]


def open_app(tmp_path: Path, clock: Clock) -> Flask:
    settings = make_settings(tmp_path, admin_api_keys="admin-key", shopper_id_secret="promotions-test")
    app = create_app(settings, clock=clock)
    app.extensions["xsell"].catalog.upsert_products(products())
    return app


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


@pytest.fixture
def shop(tmp_path: Path, clock: Clock) -> Iterator[Flask]:
    app = open_app(tmp_path, clock)
    yield app
    app.extensions["xsell"].store.close()


def body(k: int, slots: int = 1, prefix: str = "e") -> dict[str, Any]:
    return {
        "event_id": f"{prefix}{k}",
        "context": {"shopper": {"device": ("mobile", "desktop")[k % 2]}},
        "actions": [{"id": s, "features": {"offer": {"n": s}}} for s in SKUS],
        "slots": slots,
    }


def send(
    client: FlaskClient, rounds: range, clock: Clock | None = None, **kwargs: Any
) -> list[dict[str, Any]]:
    answers = []
    for k in rounds:
        response = client.post("/v1/rank", json=body(k, **kwargs))
        assert response.status_code == 200, response.get_json()
        answers.append(response.get_json())
        if clock is not None:
            clock.now += 1.0  # a request a second: the counts are re-read from the log as they go
    return answers


def trained(shop: Flask) -> str:
    return train_on(shop, [a["event_id"] for a in send(shop.test_client(), range(1000, 1040), slots=2)])


def put_rules(client: FlaskClient, rules: dict[str, Any]) -> None:
    response = client.put("/v1/rules", headers=ADMIN, json=rules)
    assert response.status_code == 200, response.get_json()


def shown(answers: list[dict[str, Any]], skus: set[str]) -> float:
    return sum(bool(set(a["chosen"]) & skus) for a in answers) / len(answers)


def test_boosts_shares_and_caps_replay_to_exactly_the_served_probabilities(shop: Flask) -> None:
    client = shop.test_client()
    version = trained(shop)
    put_rules(
        client,
        {
            "boosts": [{"sku": "p3", "factor": 4.0}, {"sku": "p0", "factor": 0.5}],
            "campaigns": [
                {"name": "summer", "products": ["p8", PROMOTED], "min_share": 0.3, "period_seconds": 3600},
                {"name": "capped", "products": ["p5"], "min_share": 0.3, "max_impressions": 2},
            ],
        },
    )
    answers = send(client, range(40), slots=1) + send(client, range(40, 70), slots=3)
    decisions = logged(shop, [a["event_id"] for a in answers])
    store = shop.extensions["xsell"].store
    traces = [store.find_decision(d.event.event_id).rules for d in decisions]
    assert all(t["boosted"]["p3"] == {"rule": "rules.boosts", "factor": 4.0} for t in traces)
    assert any(
        m["rule"] == "rules.campaigns.summer" and m["epsilon"] > 0 for t in traces for m in t.get("mixed", [])
    )
    capped = [t for t in traces if t["removed"].get("p5") == "rules.campaigns.capped.cap"]
    assert capped and sum("p5" in a["chosen"] for a in answers) == 2  # stopped at its cap
    # the check has teeth: replayed without the logged mixing, no decision would match
    (served,) = build_candidates(["served"], shop.extensions["xsell"].registry)
    for decision in decisions:
        bare = LoggedDecision(replace(decision.event, rules=None), decision.rewards)
        assert served.slot_distributions(bare)[0].tolist() != list(decision.event.probabilities)
    assert_replays_exactly(shop, decisions, "served")
    assert_replays_exactly(shop, decisions, f"model:{version}")
    ranking = {e["id"]: e.get("rule") for e in answers[0]["ranking"]}
    assert ranking["p3"] == "rules.boosts" and ranking[PROMOTED] == "rules.campaigns.summer"


def test_offers_with_a_boost_and_a_share_replay_exactly(tmp_path: Path, clock: Clock) -> None:
    app = open_app(tmp_path, clock)
    load_demo(app.extensions["xsell"].catalog)
    client = app.test_client()
    try:
        ask = {"cart": [{"sku": "camera-01"}], "max_offers": 2}
        first = client.post("/v1/offers", json=ask | {"event_id": "o-first"}).get_json()
        candidates = [a.id for a in app.extensions["xsell"].store.find_decision(first["event_id"]).actions]
        rules = {
            "boosts": [{"sku": candidates[0], "factor": 3.0}],
            "campaigns": [{"name": "c", "products": [candidates[-1]], "min_share": 0.4}],
        }
        put_rules(client, rules)
        ids = []
        for k in range(30):
            answer = client.post("/v1/offers", json=ask | {"event_id": f"o{k}"}).get_json()
            assert answer["offers"], answer
            ids.append(answer["event_id"])
        decisions = logged(app, ids)
        assert all(d.event.mixing is not None and d.event.mixing.boosts for d in decisions)
        assert any(d.event.mixing is not None and d.event.mixing.shares for d in decisions)
        assert_replays_exactly(app, decisions, "served")
    finally:
        app.extensions["xsell"].store.close()


def test_a_guaranteed_share_is_reached_by_mixing_over_its_period(shop: Flask, clock: Clock) -> None:
    client = shop.test_client()
    trained(shop)
    alone = send(client, range(300), clock)
    assert shown(alone, {PROMOTED}) < 0.08  # the bandit alone rarely shows it
    clock.now = START + 3600.0  # a new hourly period begins
    rules = {"campaigns": [{"name": "p9", "products": [PROMOTED], "min_share": 0.2, "period_seconds": 3600}]}
    put_rules(client, rules)
    promoted = send(client, range(300, 1000), clock)  # 700 decisions, one a second: inside the hour
    share = shown(promoted, {PROMOTED})
    assert share == pytest.approx(0.2, abs=0.03)  # the tolerance: over 3 sd of the period's share
    counted = RollupReader(shop.extensions["xsell"].store).campaign_counts({"p9": START + 3600.0})
    assert counted == {"p9": (700, round(share * 700))}  # the log counted every decision once
    # epsilon follows the share so far: served as a mixture, never an override
    store = shop.extensions["xsell"].store
    epsilons = {
        store.find_decision(a["event_id"]).rules.get("mixed", [{}])[0].get("epsilon") for a in promoted
    }
    assert len(epsilons) > 10 and max(e or 0.0 for e in epsilons) < 1.0


def test_caps_count_every_workers_impressions_from_the_log(tmp_path: Path, clock: Clock) -> None:
    first, second = open_app(tmp_path, clock), open_app(tmp_path, clock)  # two workers, one log
    try:
        rules = {
            "campaigns": [
                {
                    "name": "flash",
                    "products": [PROMOTED],
                    "min_share": 0.9,
                    "max_impressions": 6,
                    "period_seconds": 3600,
                },
            ]
        }
        put_rules(first.test_client(), rules)
        shown_first = send(first.test_client(), range(20), clock)
        assert sum(PROMOTED in a["chosen"] for a in shown_first) == 6  # its own count: exact
        second.extensions["xsell"].served.refresh()
        clock.now += 2.0  # past the counts' staleness bound (service/campaign_counts.py)
        later = send(second.test_client(), range(20, 40), clock)
        assert all(PROMOTED not in a["chosen"] for a in later)  # the other worker's impressions count
        rule = next(e["rule"] for e in later[0]["ranking"] if e["id"] == PROMOTED)
        assert rule == "rules.campaigns.flash.cap"
        clock.now = START + 3600.0  # the next period: the cap starts again
        again = send(second.test_client(), range(40, 60), clock)
        assert 0 < sum(PROMOTED in a["chosen"] for a in again) <= 6
    finally:
        first.extensions["xsell"].store.close()
        second.extensions["xsell"].store.close()


def test_what_the_request_excludes_is_never_pinned_boosted_or_mixed_in(shop: Flask) -> None:
    client = shop.test_client()
    rules = {
        "pins": [{"name": "top", "sku": "p9"}],
        "boosts": [{"sku": "p7", "factor": 50.0}],
        "campaigns": [{"name": "c", "products": ["p8"], "min_share": 0.9}],
    }
    put_rules(client, rules)
    answers = []
    for k in range(20):
        ask = body(k, slots=2) | {"excluded_actions": ["p7", "p8", "p9"]}
        answer = client.post("/v1/rank", json=ask).get_json()
        assert len(answer["chosen"]) == 2 and not set(answer["chosen"]) & {"p7", "p8", "p9"}, answer
        answers.append(answer)
    trace = shop.extensions["xsell"].store.find_decision(answers[0]["event_id"]).rules
    assert not {"pinned", "boosted", "mixed", "campaigns"} & trace.keys()
    assert_replays_exactly(shop, logged(shop, [a["event_id"] for a in answers]), "served")


def campaign(**fields: Any) -> dict[str, Any]:
    return {"name": "c", "products": ["p1"], "min_share": 0.2} | fields


@pytest.mark.parametrize(
    ("rules", "field"),
    [
        ({"campaigns": [campaign(min_share=0)]}, "campaigns.0.min_share"),
        ({"campaigns": [campaign(min_share=1)]}, "campaigns.0.min_share"),
        ({"campaigns": [campaign(min_share=1.5)]}, "campaigns.0.min_share"),
        ({"campaigns": [campaign(period_seconds=0)]}, "campaigns.0.period_seconds"),
        ({"campaigns": [campaign(period_seconds=-60)]}, "campaigns.0.period_seconds"),
        ({"campaigns": [campaign(max_impressions=0)]}, "campaigns.0.max_impressions"),
        ({"campaigns": [campaign(min_share=None)]}, "campaigns.0"),
        ({"campaigns": [campaign(products=[])]}, "campaigns.0.products"),
        ({"campaigns": [campaign(products=["p1", "nope"])]}, "campaigns.0.products.1"),
        ({"campaigns": [campaign(), campaign(name="d", products=["p2", "p1"])]}, "campaigns.1.products.1"),
        ({"campaigns": [campaign(), campaign(name="c", products=["p2"])]}, "campaigns"),
        (
            {"campaigns": [campaign(min_share=0.6), campaign(name="d", products=["p2"], min_share=0.5)]},
            "campaigns",
        ),
        ({"boosts": [{"sku": "nope", "factor": 2}]}, "boosts.0.sku"),
        ({"boosts": [{"sku": "p1", "factor": 0}]}, "boosts.0.factor"),
        ({"boosts": [{"sku": "p1", "factor": 1}]}, "boosts.0.factor"),
        ({"boosts": [{"sku": "p1", "factor": 2}, {"sku": "p1", "factor": 3}]}, "boosts"),
        ({"boosts": [{"sku": "p0", "factor": 2}], "never_categories": ["bag"]}, "boosts.0.sku"),
        ({"boosts": [{"sku": "p1", "factor": 2, "weight": 1}]}, "boosts.0.weight"),
    ],
)
def test_bad_promotions_get_a_422_naming_the_field_and_change_nothing(
    shop: Flask, rules: dict[str, Any], field: str
) -> None:
    client = shop.test_client()
    before = client.get("/v1/rules", headers=ADMIN).get_json()
    response = client.put("/v1/rules", headers=ADMIN, json=rules)
    assert response.status_code == 422, response.get_json()
    assert field in [d["field"] for d in response.get_json()["details"]], response.get_json()
    assert client.get("/v1/rules", headers=ADMIN).get_json() == before


def test_a_decision_serving_the_baseline_logs_no_promotion(tmp_path: Path, clock: Clock) -> None:
    """Apprentice mode (as logging-only and the most-popular arm) serves the storefront's
    own choice: boosts and shares were not mixed in, so the trace must not say they were,
    or an offline evaluation would mix them into every policy it scores there."""
    settings = make_settings(
        tmp_path, admin_api_keys="admin-key", shopper_id_secret="promotions-test", learning_mode="apprentice"
    )
    app = create_app(settings, clock=clock)
    try:
        app.extensions["xsell"].catalog.upsert_products(products())
        client = app.test_client()
        put_rules(client, {"boosts": [{"sku": "p3", "factor": 4.0}], "campaigns": [campaign(min_share=0.5)]})
        answer = send(client, range(1))[0]
        assert not any(entry.get("rule") == "rules.boosts" for entry in answer["ranking"]), answer
        record = app.extensions["xsell"].store.find_decision(answer["event_id"])
        assert record is not None and record.served_baseline and record.rules is not None
        assert not {"boosted", "mixed"} & record.rules.keys(), record.rules
        assert record.to_event(()).mixing is None
    finally:
        app.extensions["xsell"].store.close()
