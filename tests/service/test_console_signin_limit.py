"""The console's sign-in under guessing: wrong keys limited per address and overall, on the test's clock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from scripts.devtools.learning_loop import Clock
from service.app import create_app
from service.console.signin_limit import OVERALL, PER_ADDRESS, SignInLimit
from tests.conftest import make_settings

JSON = {"Accept": "application/json"}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(tmp_path: Path, clock: Clock) -> Iterator[Flask]:
    app = create_app(make_settings(tmp_path, api_keys="store-key", admin_api_keys="admin-key"), clock=clock)
    yield app
    app.extensions["xsell"].store.close()


def _client(app: Flask, address: str) -> FlaskClient:
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    return client


def _sign_in(client: FlaskClient, key: str, headers: dict[str, str] | None = None) -> int:
    return client.post("/console/signin", data={"key": key}, headers=headers or {}).status_code


def test_wrong_keys_from_one_address_get_429_then_time_lets_it_try_again(app: Flask, clock: Clock) -> None:
    guesser = _client(app, "203.0.113.7")
    assert [_sign_in(guesser, f"guess-{k}") for k in range(PER_ADDRESS)] == [403] * PER_ADDRESS
    browser = guesser.post("/console/signin", data={"key": "admin-key"})  # even the right key now
    assert browser.status_code == 429
    assert int(browser.headers["Retry-After"]) > 0
    assert browser.mimetype == "text/html" and "try again in" in browser.get_data(as_text=True)
    api = guesser.post("/console/signin", data={"key": "admin-key"}, headers=JSON)
    assert api.status_code == 429 and api.get_json()["error"] == "too_many_sign_ins"
    wait = int(api.headers["Retry-After"])
    assert wait == 12  # one failure's worth of a minute refills: 60 s / PER_ADDRESS
    clock.now += wait - 1
    assert _sign_in(guesser, "admin-key") == 429
    clock.now += 1
    assert _sign_in(guesser, "admin-key") == 303


def test_another_address_is_not_held_up_by_one_guesser(app: Flask) -> None:
    guesser, operator = _client(app, "203.0.113.7"), _client(app, "198.51.100.2")
    for k in range(PER_ADDRESS + 3):
        _sign_in(guesser, f"guess-{k}")
    assert _sign_in(guesser, "admin-key") == 429
    assert _sign_in(operator, "admin-key") == 303


def test_right_keys_and_empty_forms_do_not_count(app: Flask) -> None:
    operator = _client(app, "198.51.100.2")
    for _ in range(PER_ADDRESS * 2):
        assert _sign_in(operator, "admin-key") == 303
        assert _sign_in(operator, "") == 401
    assert _sign_in(operator, "admin-key") == 303


def test_a_storefront_key_at_the_console_counts_as_a_wrong_key(app: Flask) -> None:
    shop = _client(app, "192.0.2.10")
    assert [_sign_in(shop, "store-key") for _ in range(PER_ADDRESS)] == [403] * PER_ADDRESS
    assert _sign_in(shop, "store-key") == 429


def test_guesses_spread_over_many_addresses_meet_the_overall_limit(app: Flask, clock: Clock) -> None:
    for k in range(OVERALL):
        assert _sign_in(_client(app, f"10.0.{k // 250}.{k % 250}"), "guess") == 403
    newcomer = _client(app, "198.51.100.99")
    refused = newcomer.post("/console/signin", data={"key": "admin-key"}, headers=JSON)
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "2"  # 60 s / OVERALL
    clock.now += 2
    assert _sign_in(newcomer, "admin-key") == 303


def test_the_addresses_remembered_are_bounded_oldest_forgotten_first(clock: Clock) -> None:
    limit = SignInLimit(clock, per_address=1, overall=1_000_000, max_addresses=3)
    for address in ("a", "b", "c"):
        limit.failed(address)
    assert limit.retry_after("a") is not None  # seen again: now the most recent
    limit.failed("d")  # forgets "b", the least recently seen
    assert len(limit) == 3
    assert limit.retry_after("b") is None
    assert all(limit.retry_after(address) is not None for address in ("a", "c", "d"))


def test_a_clock_set_back_refills_nothing(clock: Clock) -> None:
    limit = SignInLimit(clock, per_address=1, overall=10)
    limit.failed("a")
    clock.now -= 3600
    assert limit.retry_after("a") == 60
