"""A retry is recognised by what it asks, whichever version of xsell logged the first answer."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from flask import Flask
from flask.testing import FlaskClient
from pydantic import Field

from service import intake_fingerprint
from service.app import create_app
from service.schemas import RankRequest
from tests.conftest import make_settings

V1 = "/personalizer/v1.0"
ACTIONS = [{"id": "tripod", "features": {"offer": {"kind": "photo"}}}, {"id": "bag"}, {"id": "sd-card"}]
CONTEXT = {"shopper": {"device": "mobile"}}


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    app = create_app(make_settings(tmp_path))
    yield app
    app.extensions["xsell"].store.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def old_hash(body: dict[str, Any]) -> str:
    """What versions before the tagged fingerprint stored: sha256 of the sorted-key JSON dump."""
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def logged_by_an_older_version(app: Flask, event_id: str, fingerprint: str) -> None:
    """Give a logged decision the fingerprint an older version would have stored with it."""
    store = app.extensions["xsell"].store
    with store.conn:
        store.conn.execute(
            "UPDATE decisions SET request_sha256 = ? WHERE event_id = ?", (fingerprint, event_id)
        )


def decisions(app: Flask) -> int:
    return int(app.extensions["xsell"].store.conn.execute("SELECT count(*) FROM decisions").fetchone()[0])


# What /v1/rank's first version (e6e0c26) hashed: every field with its default, slots a number.
FIRST_VERSION = {
    "context": CONTEXT,
    "actions": [{"id": "tripod", "features": {"offer": {"kind": "photo"}}}, {"id": "bag", "features": {}}]
    + [{"id": "sd-card", "features": {}}],
    "excluded_actions": [],
    "slots": 2,
}
PLAIN_SLOT = {"id": None, "excluded_actions": [], "baseline_action": None}
# Per-slot objects (d3259ec); shopper and session ids (898e1aa); filters (b373883).
SLOT_OBJECTS = {**FIRST_VERSION, "slots": [PLAIN_SLOT, PLAIN_SLOT]}
EXPERIMENTS = {**SLOT_OBJECTS, "shopper_id": None, "session_id": None}
FILTERS = {**EXPERIMENTS, "filters": None}


@pytest.mark.parametrize(
    "stored", [FIRST_VERSION, SLOT_OBJECTS, EXPERIMENTS, FILTERS], ids=lambda b: str(len(b))
)
def test_a_rank_retried_across_an_upgrade_gets_its_first_answer(
    app: Flask, client: FlaskClient, stored: dict[str, Any]
) -> None:
    body = {"event_id": "order-17", "context": CONTEXT, "actions": ACTIONS, "slots": 2}
    first = client.post("/v1/rank", json=body)
    assert first.status_code == 200
    logged_by_an_older_version(app, "order-17", old_hash(stored))
    retried = client.post("/v1/rank", json=body)
    assert retried.status_code == 200, retried.get_json()
    assert retried.get_json() == first.get_json()
    assert decisions(app) == 1
    # Another request under that id is still one.
    other = client.post("/v1/rank", json={**body, "slots": 1})
    assert other.status_code == 409


def test_filters_logged_before_families_and_stock_still_match(app: Flask, client: FlaskClient) -> None:
    filters = {"exclude_categories": ["cables"], "exclude_skus": ["bag"]}
    body = {"event_id": "order-18", "context": CONTEXT, "actions": ACTIONS, "filters": filters}
    first = client.post("/v1/rank", json=body)
    assert first.status_code == 200, first.get_json()
    before = {
        **FILTERS,
        "slots": [PLAIN_SLOT],
        "filters": {
            "include_categories": [],
            "exclude_categories": ["cables"],
            "include_skus": [],
            "exclude_skus": ["bag"],
            "include_tags": [],
            "exclude_tags": [],
            "min_price": None,
            "max_price": None,
            "max_per_category": None,
        },
    }
    logged_by_an_older_version(app, "order-18", old_hash(before))
    assert client.post("/v1/rank", json=body).get_json() == first.get_json()


def test_a_personalizer_rank_retried_across_an_upgrade_is_not_a_new_decision(
    app: Flask, client: FlaskClient
) -> None:
    body = {"eventId": "p-1", "contextFeatures": [{"tier": "gold"}], "actions": [{"id": "a"}, {"id": "b"}]}
    first = client.post(f"{V1}/rank", json=body)
    assert first.status_code == 201
    whole = {"context_features": [{"tier": "gold"}], "excluded_actions": [], "defer_activation": False}
    whole["actions"] = [{"id": "a", "features": []}, {"id": "b", "features": []}]
    logged_by_an_older_version(app, "p-1", old_hash(whole))
    retried = client.post(f"{V1}/rank", json=body)
    assert retried.status_code == 201 and retried.get_json() == first.get_json()
    assert decisions(app) == 1  # not logged again under a derived id


def test_the_fingerprint_ignores_defaults_sent_or_added_later() -> None:
    base = {"event_id": "e", "actions": [{"id": "a"}, {"id": "b"}]}
    plain = intake_fingerprint.fingerprint(RankRequest.model_validate(base))
    explicit = {**base, "context": {}, "slots": 1, "excluded_actions": [], "filters": {"in_stock": False}}
    assert plain.startswith("v2:")
    assert intake_fingerprint.fingerprint(RankRequest.model_validate({**base, "slots": [{}]})) == plain
    assert (
        intake_fingerprint.fingerprint(RankRequest.model_validate({**base, "context": {}, "slots": 1}))
        == plain
    )
    assert (
        intake_fingerprint.fingerprint(RankRequest.model_validate(explicit)) != plain
    )  # filters: {} is given

    class Later(RankRequest):  # a version that added a field with a default
        boost: list[str] = Field(default_factory=list)

    assert intake_fingerprint.fingerprint(Later.model_validate(base)) == plain
    assert intake_fingerprint.fingerprint(Later.model_validate({**base, "boost": ["a"]})) != plain
    assert intake_fingerprint.fingerprint(RankRequest.model_validate({**base, "slots": 2})) != plain


def test_a_tagged_fingerprint_is_never_compared_with_an_old_one() -> None:
    def earlier() -> list[str]:
        raise AssertionError("an untagged row only")

    assert intake_fingerprint.same_request("v2:abc", "v2:abc", earlier)
    assert not intake_fingerprint.same_request("v2:abc", "v2:abd", earlier)
    assert not intake_fingerprint.same_request("", "v2:abd", earlier)  # the service chose that id
    assert intake_fingerprint.same_request("0f" * 32, "v2:abd", lambda: ["0f" * 32])
