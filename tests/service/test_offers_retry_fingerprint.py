"""An offers retry is recognised by what it asks, whichever version of xsell logged the first answer."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service import intake_fingerprint
from service.resources import shopper_key
from service.schemas import OffersRequest
from tests.conftest import demo_shop
from tests.service.test_retry_fingerprint import decisions, logged_by_an_older_version, old_hash


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[Flask]:
    app = demo_shop(tmp_path)
    yield app
    app.extensions["xsell"].store.close()


@pytest.fixture
def client(shop: Flask) -> FlaskClient:
    return shop.test_client()


CART = [{"sku": "camera-01", "qty": 1}]
BODY = {"event_id": "cart-7", "cart": CART, "max_offers": 2, "search": "Spare Battery"}
# What /v1/offers' first version (acc5222) hashed: every field but the event id, the
# shopper id and the search, with defaults, and the search's tokens.
FIRST_VERSION = {
    "cart": [{"sku": "camera-01", "qty": 1, "price": None}],
    "viewed": [],
    "device": None,
    "locale": None,
    "hour": None,
    "stage": "browse",
    "max_offers": 2,
    "search_tokens": ["spare", "battery"],
}
# The keyed shopper (9edf8fc), bought before (50d3f51), filters (31aba17), session (b373883).
SHOPPER = {**FIRST_VERSION, "shopper_key": None}
BOUGHT = {**SHOPPER, "bought": []}
FILTERS = {**BOUGHT, "filters": None}
SESSION = {**FILTERS, "session_id": None}
OLD_FILTERS = {
    "include_categories": [],
    "exclude_categories": ["tripod"],
    "include_skus": [],
    "exclude_skus": [],
    "include_tags": [],
    "exclude_tags": [],
    "min_price": None,
    "max_price": None,
    "max_per_category": None,
}
# The filters' families and stock (2da538f): the last untagged fingerprint.
LATEST_FILTERS = {**OLD_FILTERS, "include_families": [], "exclude_families": [], "in_stock": False}


def offered(client: FlaskClient, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/v1/offers", json=body)
    assert response.status_code == 200, response.get_json()
    answer = response.get_json()
    assert answer["offers"], answer  # an empty answer would pass the comparison below
    return answer


@pytest.mark.parametrize(
    ("body", "stored"),
    [
        (BODY, FIRST_VERSION),
        (BODY, SHOPPER),
        (BODY, BOUGHT),
        (BODY, FILTERS),
        (BODY, SESSION),
        ({**BODY, "filters": {"exclude_categories": ["tripod"]}}, {**BOUGHT, "filters": OLD_FILTERS}),
        (
            {**BODY, "filters": {"exclude_categories": ["tripod"]}},
            {**SESSION, "filters": OLD_FILTERS},
        ),
        (
            {**BODY, "filters": {"exclude_categories": ["tripod"]}},
            {**SESSION, "filters": LATEST_FILTERS},
        ),
        (
            {**BODY, "bought": ["tripod-01"], "session_id": "s-1"},
            {**BOUGHT, "bought": ["tripod-01"]} | {"filters": None, "session_id": "s-1"},
        ),
    ],
    ids=[
        "first",
        "shopper",
        "bought",
        "filters",
        "session",
        "old-filters",
        "old-filters-session",
        "families",
        "bought-session",
    ],
)
def test_an_offers_retry_across_an_upgrade_gets_its_first_answer(
    shop: Flask, client: FlaskClient, body: dict[str, Any], stored: dict[str, Any]
) -> None:
    first = offered(client, body)
    logged_by_an_older_version(shop, "cart-7", old_hash(stored))
    retried = client.post("/v1/offers", json=body)
    assert retried.status_code == 200, retried.get_json()
    assert retried.get_json() == first
    assert decisions(shop) == 1
    # Another request under that id is still one, across every older fingerprint.
    for other in ({**body, "max_offers": 1}, {**body, "search": "tripod"}, {**body, "viewed": ["bag-01"]}):
        assert client.post("/v1/offers", json=other).status_code == 409


def test_a_shoppers_retry_logged_before_the_tag_matches_only_that_shopper(
    shop: Flask, client: FlaskClient
) -> None:
    body = {**BODY, "shopper_id": "alice"}
    first = offered(client, body)
    key = shopper_key(shop.extensions["xsell"], "alice")
    logged_by_an_older_version(shop, "cart-7", old_hash({**SESSION, "shopper_key": key}))
    assert client.post("/v1/offers", json=body).get_json() == first
    assert client.post("/v1/offers", json={**BODY, "shopper_id": "bob"}).status_code == 409


def test_the_offers_fingerprint_is_tagged_and_ignores_defaults_and_raw_text() -> None:
    plain = OffersRequest.model_validate(BODY)
    derived = {"search_tokens": ["spare", "battery"], "shopper_key": None}
    tagged = intake_fingerprint.fingerprint(plain, intake_fingerprint.OFFERS_NOT_HASHED, derived)
    assert tagged.startswith(intake_fingerprint.TAG)
    explicit = OffersRequest.model_validate({**BODY, "stage": "browse", "bought": [], "session_id": None})
    assert intake_fingerprint.fingerprint(explicit, intake_fingerprint.OFFERS_NOT_HASHED, derived) == tagged
    # The search's text is not kept, only its tokens; the same tokens are the same request.
    worded = OffersRequest.model_validate({**BODY, "search": "spare  BATTERY!"})
    assert intake_fingerprint.fingerprint(worded, intake_fingerprint.OFFERS_NOT_HASHED, derived) == tagged
    keyed = {**derived, "shopper_key": "k"}
    assert intake_fingerprint.fingerprint(plain, intake_fingerprint.OFFERS_NOT_HASHED, keyed) != tagged
