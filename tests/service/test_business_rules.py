"""Business rules and request filters shape decisions by exclusion only, logged by rule,
and every decision they shaped replays to exactly the probabilities served."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from scripts.demo_store import load_demo
from service.app import create_app
from tests.conftest import make_settings
from tests.service.test_replay_exact import assert_replays_exactly, logged, train_on

ADMIN = {"Authorization": "Bearer admin-key"}
KINDS = {
    "tripod": "photo",
    "lens": "photo",
    "flash": "photo",
    "bag": "carry",
    "strap": "carry",
    "case": "carry",
}
PRICES = {"tripod": 49.0, "lens": 300.0, "flash": 89.0, "bag": 39.0, "strap": 9.0, "case": 15.0}
ACTIONS = [
    {
        "id": a,
        "features": {
            "offer": {"category": k, "price": PRICES[a], "tags": ["sale"] if a in ("bag", "lens") else []}
        },
    }
    for a, k in KINDS.items()
]
DEVICES = ("mobile", "desktop", "tablet")


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Flask]:
    app = create_app(make_settings(tmp_path, admin_api_keys="admin-key", shopper_id_secret="rules-test"))
    load_demo(app.extensions["xsell"].catalog)
    yield app
    app.extensions["xsell"].store.close()


def rank(k: int, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": f"e{k}",
        "context": {"shopper": {"device": DEVICES[k % 3]}},
        "actions": ACTIONS,
        **extra,
    }


def send(client: FlaskClient, rounds: range, **extra: Any) -> list[str]:
    ids = []
    for k in rounds:
        response = client.post("/v1/rank", json=rank(k, **extra))
        assert response.status_code == 200, response.get_json()
        ids.append(response.get_json()["event_id"])
    return ids


def trained(shop: Flask) -> str:
    client = shop.test_client()
    return train_on(shop, send(client, range(100, 130), slots=3))


def test_request_filters_remove_candidates_by_rule_and_replay_exactly(shop: Flask) -> None:
    client = shop.test_client()
    trained(shop)
    filters = {"exclude_categories": ["carry"], "max_price": 100.0, "exclude_skus": ["flash"]}
    decisions = logged(shop, send(client, range(12), slots=2, filters=filters))
    assert decisions
    store = shop.extensions["xsell"].store
    for decision in decisions:
        assert {c.action_id for c in decision.event.choices} == {"tripod"}  # all else was filtered out
        assert decision.event.excluded == {"bag", "strap", "case", "lens", "flash"}
        trace = store.find_decision(decision.event.event_id).rules
        assert trace["removed"] == {
            "bag": "filters.exclude_categories",
            "case": "filters.exclude_categories",
            "strap": "filters.exclude_categories",
            "lens": "filters.max_price",
            "flash": "filters.exclude_skus",
        }
    assert_replays_exactly(shop, decisions, "served")
    tagged = logged(shop, send(client, range(20, 32), filters={"include_tags": ["sale"]}))
    assert {d.event.choices[0].action_id for d in tagged} <= {"bag", "lens"}
    assert_replays_exactly(shop, tagged, "served")


def test_diversity_caps_each_category_per_answer_inside_the_sampler(shop: Flask) -> None:
    client = shop.test_client()
    version = trained(shop)
    decisions = logged(shop, send(client, range(30), slots=3, filters={"max_per_category": 1}))
    assert decisions
    for decision in decisions:
        shown = Counter(KINDS[c.action_id] for c in decision.event.choices)
        assert shown and max(shown.values()) == 1  # never two of one category
        assert len(decision.event.choices) == 2  # two categories, one each: the third slot has none left
    # the second slot was drawn among the other category only, and logged so
    assert any(0 < d.event.choices[1].probability < 1 for d in decisions)
    assert_replays_exactly(shop, decisions, "served")
    assert_replays_exactly(shop, decisions, f"model:{version}")
    capped = logged(shop, send(client, range(40, 60), slots=3, filters={"max_per_category": 2}))
    assert all(max(Counter(KINDS[c.action_id] for c in d.event.choices).values()) <= 2 for d in capped)
    assert_replays_exactly(shop, capped, "served")


def test_operator_rules_pin_a_campaign_ban_a_category_and_are_kept_in_history(shop: Flask) -> None:
    client = shop.test_client()
    trained(shop)
    rules = {
        "pins": [{"name": "summer", "sku": "strap"}],
        "never_categories": ["photo"],
        "reason": "summer sale",
    }
    response = client.put("/v1/rules", headers=ADMIN, json=rules)
    assert response.status_code == 200, response.get_json()
    assert client.get("/v1/rules", headers=ADMIN).get_json()["pins"] == [{"name": "summer", "sku": "strap"}]
    decisions = logged(shop, send(client, range(15), slots=2))
    assert decisions
    store = shop.extensions["xsell"].store
    for decision in decisions:
        first, second = decision.event.choices
        assert (first.action_id, first.probability) == ("strap", 1.0)
        assert second.action_id in {"bag", "case"}
        trace = store.find_decision(decision.event.event_id).rules
        assert trace["pinned"] == {"action_id": "strap", "rule": "rules.pins.summer"}
        assert set(trace["removed"].values()) == {"rules.never_categories"}
    assert_replays_exactly(shop, decisions, "served")
    history = client.get("/v1/models", headers=ADMIN).get_json()["changes"]
    assert history[0]["action"] == "rules" and "summer sale" in history[0]["reason"]
    # a margin floor removes what is known to earn too little
    client.put("/v1/rules", headers=ADMIN, json={"margin_floor": 5.0})
    low = [
        {"id": "x", "features": {"offer": {"margin": 2.0}}},
        {"id": "y", "features": {"offer": {"margin": 9.0}}},
    ]
    answer = client.post("/v1/rank", json={"actions": low}).get_json()
    assert answer["chosen"] == ["y"]
    trace = store.find_decision(answer["event_id"]).rules
    assert trace["removed"] == {"x": "rules.margin_floor"}


def test_offers_filters_and_rules_with_an_experiment_replay_exactly(shop: Flask) -> None:
    client = shop.test_client()
    first = shop.extensions["xsell"].registry.active().version

    def body(k: int) -> dict[str, Any]:
        return {
            "event_id": f"o{k}",
            "cart": [{"sku": "camera-01"}],
            "device": DEVICES[k % 3],
            "max_offers": 3,
        }

    ids = [client.post("/v1/offers", json=body(k)).get_json()["event_id"] for k in range(100, 130)]
    train_on(shop, ids)
    arms = [
        {"name": "bandit", "policy": "model", "share": 0.4},
        {"name": "frozen", "policy": "frozen", "share": 0.3, "version": first},
        {"name": "popular", "policy": "most-popular", "share": 0.3},
    ]
    assert client.post("/v1/experiments", headers=ADMIN, json={"id": "x", "arms": arms}).status_code == 201
    assert client.put("/v1/rules", headers=ADMIN, json={"max_per_category": 1}).status_code == 200
    answers = [
        client.post("/v1/offers", json=body(k) | {"filters": {"max_price": 200}}).get_json()
        for k in range(40)
    ]
    assert all(a["offers"] for a in answers)
    for answer in answers:
        categories = [o["category"] for o in answer["offers"]]
        assert len(categories) == len(set(categories))
        assert all(o["price"] <= 200 for o in answer["offers"])
    decisions = logged(shop, [a["event_id"] for a in answers])
    store = shop.extensions["xsell"].store
    assert {store.find_decision(d.event.event_id).experiment["arm"] for d in decisions} == {
        "bandit",
        "frozen",
        "popular",
    }
    assert_replays_exactly(shop, decisions, "served")


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (
            "/v1/rank",
            {"actions": ACTIONS, "filters": {"min_price": 50, "max_price": 10}},
            "filters.max_price",
        ),
        ("/v1/rank", {"actions": ACTIONS, "filters": {"max_per_category": 0}}, "filters.max_per_category"),
        ("/v1/rank", {"actions": ACTIONS, "filters": {"exclude_tags": [""]}}, "filters.exclude_tags.0"),
        ("/v1/rank", {"actions": ACTIONS, "filters": {"colour": "red"}}, "filters.colour"),
        ("/v1/rank", {"actions": ACTIONS, "filters": {"include_skus": ["nope"]}}, "filters"),
        ("/v1/offers", {"cart": [{"sku": "camera-01"}], "filters": {"min_price": -1}}, "filters.min_price"),
    ],
)
def test_bad_filters_get_a_422_naming_the_field(
    shop: Flask, path: str, body: dict[str, Any], field: str
) -> None:
    response = shop.test_client().post(path, json=body)
    assert response.status_code == 422, response.get_json()
    assert field in [d["field"] for d in response.get_json()["details"]]
    assert shop.extensions["xsell"].store.conn.execute("SELECT count(*) FROM decisions").fetchone()[0] == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"margin_floor": -1}, "margin_floor"),
        ({"pins": [{"name": "a", "sku": "x"}, {"name": "a", "sku": "y"}]}, "pins"),
        ({"pins": [{"name": "bad name", "sku": "x"}]}, "pins.0.name"),
        ({"max_per_category": 0}, "max_per_category"),
        ({"never_categories": "photo"}, "never_categories"),
        ({"boost": 2}, "boost"),
    ],
)
def test_bad_rules_get_a_422_naming_the_field_and_change_nothing(
    shop: Flask, body: dict[str, Any], field: str
) -> None:
    client = shop.test_client()
    response = client.put("/v1/rules", headers=ADMIN, json=body)
    assert response.status_code == 422, response.get_json()
    assert field in [d["field"] for d in response.get_json()["details"]]
    assert client.get("/v1/rules", headers=ADMIN).get_json()["pins"] == []


def test_the_answer_names_the_rule_behind_each_removal_and_pin(shop: Flask) -> None:
    client = shop.test_client()
    client.put("/v1/rules", headers=ADMIN, json={"pins": [{"name": "summer", "sku": "case"}]})
    answer = client.post("/v1/rank", json=rank(1, filters={"exclude_skus": ["lens"]})).get_json()
    rules = {e["id"]: e.get("rule") for e in answer["ranking"]}
    assert answer["chosen"] == ["case"]
    assert rules["case"] == "rules.pins.summer" and rules["lens"] == "filters.exclude_skus"
    assert rules["tripod"] is None


def test_offers_the_filters_leave_nothing_of_are_filtered_not_an_error(shop: Flask) -> None:
    client = shop.test_client()
    filtered = client.post(
        "/v1/offers", json={"cart": [{"sku": "camera-01"}], "filters": {"max_price": 0.01}}
    )
    assert filtered.status_code == 200
    assert filtered.get_json()["no_offer"] == "filtered" and filtered.get_json()["offers"] == []
    assert shop.extensions["xsell"].store.conn.execute("SELECT count(*) FROM decisions").fetchone()[0] == 0


def test_offers_back_fill_with_allowed_popular_products_and_say_so(shop: Flask) -> None:
    client = shop.test_client()
    catalog = shop.extensions["xsell"].catalog
    camera = catalog.products(["camera-01"])["camera-01"]
    # a popular product of another aisle: nothing in a camera cart relates to it
    other = next(p for p in catalog.popular(limit=80) if p.family != camera.family)
    body = {"cart": [{"sku": "camera-01"}], "max_offers": 2}
    related = client.post("/v1/offers", json=body | {"event_id": "plain"}).get_json()
    assert related["offers"] and related["backfill"] is False
    assert other.sku not in {o["sku"] for o in related["offers"]}
    ask = body | {"event_id": "bf", "filters": {"include_skus": [other.sku]}}
    answer = client.post("/v1/offers", json=ask).get_json()
    assert answer["backfill"] is True and [o["sku"] for o in answer["offers"]] == [other.sku]
    assert answer["offers"][0]["reason"].startswith("Popular with shoppers")
    decision = shop.extensions["xsell"].store.find_decision("bf")
    assert decision.rules["backfill"] is True and other.sku not in decision.rules["removed"]
    assert set(decision.rules["removed"].values()) == {"filters.include_skus"}
    assert client.post("/v1/offers", json=ask).get_json() == answer  # a retry gets the same answer
    assert_replays_exactly(shop, logged(shop, ["bf"]), "served")
    nothing = client.post("/v1/offers", json=body | {"filters": {"include_skus": ["no-such-sku"]}}).get_json()
    assert nothing["no_offer"] == "filtered" and nothing["offers"] == []


def test_rank_filters_by_family_and_stock_read_from_features_and_log_the_filters(shop: Flask) -> None:
    client = shop.test_client()
    trained(shop)
    families = {"tripod": "studio", "lens": "studio", "flash": "lighting", "bag": "travel"}
    stock = {"tripod": {"stock": 0}, "lens": {"stock": 4}, "flash": {"in_stock": True}, "bag": {}}
    actions = [{"id": a, "features": {"offer": {"family": f} | stock[a]}} for a, f in families.items()] + [
        {"id": "case", "features": {"offer": {"family": "travel", "stock": 2}}}
    ]
    filters = {"exclude_families": ["lighting"], "in_stock": True}
    ids = []
    for k in range(10):
        body = {"event_id": f"f{k}", "actions": actions, "slots": 2, "filters": filters}
        answer = client.post("/v1/rank", json=body).get_json()
        assert set(answer["chosen"]) == {"lens", "case"}, answer
        ids.append(answer["event_id"])
    trace = shop.extensions["xsell"].store.find_decision("f0").rules
    assert trace["removed"] == {
        "tripod": "filters.in_stock",  # none on hand
        "flash": "filters.exclude_families",
        "bag": "filters.in_stock",  # its stock is not known
    }
    assert trace["filters"] == {"exclude_families": ["lighting"], "in_stock": True}
    assert_replays_exactly(shop, logged(shop, ids), "served")
    only = {"event_id": "g", "actions": actions, "filters": {"include_families": ["travel"]}}
    assert client.post("/v1/rank", json=only).get_json()["chosen"][0] in {"bag", "case"}


def test_offers_filter_by_the_catalogs_family_and_back_fill_from_other_families(shop: Flask) -> None:
    client = shop.test_client()
    catalog = shop.extensions["xsell"].catalog
    body = {"cart": [{"sku": "camera-01"}], "max_offers": 3, "event_id": "fam"}
    kept = client.post("/v1/offers", json=body | {"filters": {"include_families": ["photo"]}}).get_json()
    assert kept["offers"] and kept["backfill"] is False
    assert {p.family for p in catalog.products([o["sku"] for o in kept["offers"]]).values()} == {"photo"}
    away = body | {"event_id": "nofam", "filters": {"exclude_families": ["photo"], "in_stock": True}}
    answer = client.post("/v1/offers", json=away).get_json()
    assert answer["offers"] and answer["backfill"] is True
    shown = catalog.products([o["sku"] for o in answer["offers"]]).values()
    assert all(p.family != "photo" and p.stock > 0 for p in shown)
    trace = shop.extensions["xsell"].store.find_decision("nofam").rules
    assert set(trace["removed"].values()) <= {"filters.exclude_families"}
    assert trace["filters"] == {"exclude_families": ["photo"], "in_stock": True}
    assert_replays_exactly(shop, logged(shop, ["fam", "nofam"]), "served")
