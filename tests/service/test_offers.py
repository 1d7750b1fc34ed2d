"""POST /v1/offers through the app, on the demo store: each promise to the shopper holds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from policies.offers.catalog import Product
from scripts.demo_store import demo_products
from tests.conftest import demo_shop


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    app = demo_shop(tmp_path_factory.mktemp("shop"))
    yield app
    app.extensions["xsell"].store.close()


@pytest.fixture
def client(shop: Flask) -> FlaskClient:
    return shop.test_client()


def offers(client: FlaskClient, **body) -> dict:
    response = client.post("/v1/offers", json=body)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def catalog(shop: Flask):
    return shop.extensions["xsell"].catalog


def test_offers_complement_the_cart_and_explain_themselves_by_naming_the_cart_item(shop, client) -> None:
    camera = catalog(shop).products(["camera-01"])["camera-01"]
    for _ in range(10):
        answer = offers(client, cart=[{"sku": "camera-01", "qty": 1}], max_offers=3)
        assert len(answer["offers"]) == 3
        for offer in answer["offers"]:
            assert offer["category"] in {"memory_card", "camera_bag", "tripod", "camera_battery"}
            assert camera.title in offer["reason"]
            assert offer["confidence"]["level"] in {"high", "medium", "low"}
            assert 0 < offer["probability"] <= 1
        assert len({o["category"] for o in answer["offers"]}) == 3  # one item per kind


def test_never_offers_what_is_in_the_cart_or_a_second_item_of_a_kind_it_has(client) -> None:
    cart = [{"sku": "camera-01", "qty": 1}, {"sku": "memory_card-03", "qty": 2}]
    for _ in range(20):
        answer = offers(client, cart=cart, max_offers=3)["offers"]
        assert len(answer) == 3  # the camera's three other kinds: an empty answer must not pass
        for offer in answer:
            assert offer["sku"] not in {"camera-01", "memory_card-03"}
            assert offer["category"] != "memory_card"  # no second memory card


def test_never_offers_out_of_stock_items(shop, client) -> None:
    store = catalog(shop)
    tripods, _ = store.page(category="tripod", offset=0, limit=100)
    store.upsert_products([Product(**{**_fields(p), "stock": 0}) for p in tripods])
    try:
        for _ in range(20):
            answer = offers(client, cart=[{"sku": "camera-02", "qty": 1}], max_offers=3)["offers"]
            assert {o["category"] for o in answer} == {"memory_card", "camera_bag", "camera_battery"}
    finally:
        store.upsert_products(tripods)


def test_blocked_pairs_are_never_offered(shop, client) -> None:
    catalog(shop).review("camera", "camera_bag", "blocked", "bags are sold out")
    try:
        for _ in range(20):
            answer = offers(client, cart=[{"sku": "camera-03", "qty": 1}], max_offers=3)["offers"]
            assert {o["category"] for o in answer} == {"memory_card", "tripod", "camera_battery"}
    finally:
        catalog(shop).review("camera", "camera_bag", None)


def test_a_full_cart_or_busy_checkout_gets_no_offer(client) -> None:
    skus = [
        "phone-01",
        "laptop-01",
        "tv-01",
        "guitar-01",
        "tent-01",
        "stroller-01",
        "blender-01",
        "bicycle-01",
    ]
    full = offers(client, cart=[{"sku": s, "qty": 1} for s in skus])
    assert full == {
        "event_id": None,
        "model_version": None,
        "offers": [],
        "no_offer": "cart_full",
        "unknown_skus": [],
        "backfill": False,
    }
    busy = offers(client, cart=[{"sku": s, "qty": 1} for s in skus[:4]], stage="checkout")
    assert busy["no_offer"] == "checkout_cart_full"
    light = offers(client, cart=[{"sku": "phone-01", "qty": 1}], stage="checkout", max_offers=3)
    assert len(light["offers"]) == 1  # checkout: at most one offer


def test_an_empty_cart_falls_back_to_popular_products(client) -> None:
    answer = offers(client, cart=[], max_offers=2)
    assert len(answer["offers"]) == 2
    assert all(o["reason"].startswith("Popular with shoppers in") for o in answer["offers"])


def test_the_decision_is_logged_with_features_not_raw_text_or_ids(shop, client) -> None:
    answer = offers(
        client,
        cart=[{"sku": "laptop-02", "qty": 1}],
        search="Cheap SLEEVE for my laptop, ships to 221B Baker St",
        shopper_id="alice@example.com",
    )
    record = shop.extensions["xsell"].store.find_decision(answer["event_id"])
    logged = str(record.context) + str(record.actions)
    assert "alice" not in logged and "Baker St" not in logged and "Cheap SLEEVE" not in logged
    assert record.context["search"]["tokens"][:3] == ["cheap", "sleeve", "for"]
    assert record.context["cart"]["categories"] == ["laptop"]
    assert record.choices[0].action_id == answer["offers"][0]["sku"]


def test_feedback_on_an_offer_names_its_sku(client) -> None:
    answer = offers(client, cart=[{"sku": "bicycle-01", "qty": 1}], max_offers=2)
    sku = answer["offers"][1]["sku"]
    response = client.post(
        f"/v1/events/{answer['event_id']}/feedback", json={"signal": "click", "action_id": sku}
    )
    assert response.status_code == 200 and response.get_json()["action_id"] == sku


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"cart": [{"sku": "bad sku", "qty": 1}]}, 422, "cart.0.sku"),
        ({"bought": ["x"] * 51}, 422, "bought"),
        ({"cart": [{"sku": "phone-01", "qty": -1}]}, 422, "cart.0.qty"),
        ({"cart": [{"sku": "phone-01", "qty": 0}]}, 422, "cart.0.qty"),
        ({"cart": [{"qty": 1}]}, 422, "cart.0.sku"),
        ({"cart": [{"sku": "phone-01", "qty": 1, "price": -5}]}, 422, "cart.0.price"),
        ({"cart": [{"sku": "phone-01"}, {"sku": "phone-01"}]}, 422, "body"),
        ({"cart": [{"sku": f"s{i}"} for i in range(101)]}, 422, "cart"),
        ({"cart": "camera"}, 422, "cart"),
        ({"stage": "paying"}, 422, "stage"),
        ({"max_offers": 0}, 422, "max_offers"),
        ({"hour": 24}, 422, "hour"),
        ({"surprise": True}, 422, "surprise"),
    ],
)
def test_bad_offer_requests_get_a_clear_4xx_naming_the_field(client, body, status, field) -> None:
    response = client.post("/v1/offers", json=body)
    assert response.status_code == status
    details = response.get_json()["details"]
    assert any(d["field"] == field for d in details), details


def test_catalog_pages_and_filters(client) -> None:
    page = client.get("/v1/catalog?category=tripod&limit=3&offset=2").get_json()
    assert page["total"] == 8 and len(page["products"]) == 3
    assert all(p["category"] == "tripod" for p in page["products"])
    everything = client.get("/v1/catalog?limit=500").get_json()
    assert everything["total"] == len(demo_products()) and len(everything["products"]) == 500


def _fields(product: Product) -> dict:
    return {f: getattr(product, f) for f in product.__slots__}


def test_a_pinned_pair_is_preferred_over_stronger_relations(tmp_path: Path) -> None:
    app = demo_shop(tmp_path, offers_max_candidates=1)
    client = app.test_client()
    app.extensions["xsell"].catalog.review("camera", "camera_battery", "pinned", "battery promotion")
    for _ in range(5):
        [offer] = offers(client, cart=[{"sku": "camera-04", "qty": 1}])["offers"]
        assert offer["category"] == "camera_battery"
    app.extensions["xsell"].store.close()


def unknown_counted(client: FlaskClient) -> float:
    text = client.get("/metrics").get_data(as_text=True)
    [line] = [x for x in text.splitlines() if x.startswith("xsell_offers_unknown_cart_skus_total ")]
    return float(line.split()[1])


def test_unknown_cart_skus_are_left_out_reported_and_counted(shop, client) -> None:
    before = unknown_counted(client)
    cart = [{"sku": "gone-1", "qty": 1}, {"sku": "camera-01", "qty": 1}, {"sku": "gone-2", "qty": 3}]
    answer = offers(client, cart=cart, max_offers=3)
    assert answer["unknown_skus"] == ["gone-1", "gone-2"]
    assert len(answer["offers"]) == 3  # answered from the known camera line
    photo = {"memory_card", "camera_bag", "tripod", "camera_battery"}
    assert {o["category"] for o in answer["offers"]} <= photo
    record = shop.extensions["xsell"].store.find_decision(answer["event_id"])
    assert record.context["cart"]["categories"] == ["camera"] and record.context["cart"]["lines"] == 1
    assert unknown_counted(client) == before + 2
    only_unknown = offers(client, cart=[{"sku": "gone-3", "qty": 1}], max_offers=2)
    assert only_unknown["unknown_skus"] == ["gone-3"] and len(only_unknown["offers"]) == 2  # popular
    assert unknown_counted(client) == before + 3
    known = offers(client, cart=[{"sku": "camera-01", "qty": 1}])
    assert known["unknown_skus"] == [] and unknown_counted(client) == before + 3


def test_reasons_say_what_triggered_the_offer(shop, client) -> None:
    camera = catalog(shop).products(["camera-01"])["camera-01"]
    laptop = catalog(shop).products(["laptop-01"])["laptop-01"]
    viewed = offers(client, viewed=["camera-01"], max_offers=3)["offers"]
    assert len(viewed) == 3
    for offer in viewed:
        assert f"the {camera.title} you viewed" in offer["reason"] and "cart" not in offer["reason"]
    bought = offers(client, bought=["laptop-01"], max_offers=2)["offers"]
    assert len(bought) == 2
    for offer in bought:
        assert f"the {laptop.title} you bought before" in offer["reason"] and "cart" not in offer["reason"]
    both = offers(client, cart=[{"sku": "laptop-01", "qty": 1}], viewed=["camera-01"], max_offers=6)["offers"]
    photo = {"memory_card", "camera_bag", "tripod", "camera_battery"}
    assert {o["category"] in photo for o in both} == {True, False}  # offers from each trigger
    for offer in both:
        if offer["category"] in photo:
            assert f"the {camera.title} you viewed" in offer["reason"]
        else:
            assert f"the {laptop.title} in your cart" in offer["reason"]
    in_cart = offers(client, cart=[{"sku": "laptop-01", "qty": 1}], viewed=["laptop-01"])["offers"]
    assert "in your cart" in in_cart[0]["reason"]  # in the cart and viewed: the cart is what counts
