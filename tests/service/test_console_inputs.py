"""The console's sign-in as an attacker would use it: where "next" may send a signed-in operator."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from service import http_metrics
from service.app import create_app
from tests.conftest import make_settings

# Each is a link an attacker could send an operator; none may leave the console's pages.
ESCAPES = [
    "/console/\r\nSet-Cookie: x=1",  # a header split was a 500 (an unhandled error logged)
    "/console/\n",
    "/console/../v1/config",
    "/console/%2e%2e/v1/config",
    "/console/./../metrics",
    "//evil.example/console/",
    "/\\evil.example",
    "https://evil.example/console/",
]


@pytest.fixture
def app(tmp_path: Path) -> Iterator[Flask]:
    app = create_app(make_settings(tmp_path, api_keys="store-key", admin_api_keys="admin-key"))
    yield app
    app.extensions["xsell"].store.close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.mark.parametrize("target", ESCAPES)
def test_next_never_leaves_the_console(client: FlaskClient, target: str) -> None:
    signed_in = client.post("/console/signin", data={"key": "admin-key", "next": target})
    assert signed_in.status_code == 303
    assert signed_in.headers["Location"] == "/console/"
    again = client.get("/console/signin", query_string={"next": target})
    assert again.status_code == 302
    assert again.headers["Location"] == "/console/"


def test_next_keeps_a_console_page_with_its_query(client: FlaskClient) -> None:
    signed_in = client.post(
        "/console/signin", data={"key": "admin-key", "next": "/console/events?event_id=a/../b"}
    )
    assert signed_in.headers["Location"] == "/console/events?event_id=a/../b"


def _signed_in(app: Flask) -> tuple[FlaskClient, str, str]:
    """A browser signed in: its client, a copy of its session cookie and its CSRF token."""
    browser = app.test_client()
    assert browser.post("/console/signin", data={"key": "admin-key"}).status_code == 303
    cookie = browser.get_cookie("xsell_console", path="/console")
    assert cookie is not None
    page = browser.get("/console/settings").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', page)
    assert token is not None
    return browser, cookie.value, token.group(1)


def test_a_copied_cookie_ends_when_its_session_signs_out(app: Flask) -> None:
    browser, copied, csrf = _signed_in(app)
    other, _, _ = _signed_in(app)
    thief = app.test_client()
    thief.set_cookie("xsell_console", copied, path="/console", secure=True)
    assert thief.get("/console/settings").status_code == 200
    assert browser.post("/console/signout", data={"csrf_token": csrf}).status_code == 303
    # The copy was worth a working day after sign-out: the cookie held all the session.
    assert thief.get("/console/settings").status_code == 302
    assert thief.post("/console/settings", data={"csrf_token": csrf}).status_code == 401
    assert other.get("/console/settings").status_code == 200  # other sessions go on


def test_offers_page_offers_only_whole_hour_windows_and_names_its_start(app: Flask) -> None:
    browser, _, _ = _signed_in(app)
    page = browser.get("/console/offers", query_string={"window": "15m"}).get_data(as_text=True)
    picked = re.findall(r'href="[^"]*window=(\w+)"', page)
    assert picked == ["1h", "6h", "24h", "7d"]  # the offers roll up by the hour
    assert re.search(r'window=1h" class="active"', page)  # 15m is not served as if it were
    assert re.search(r"offers shown in decisions made since \d{4}-\d\d-\d\d \d\d:00:00 UTC", page)
    assert f"answers with no offer since the service started, {http_metrics.scope()}" in page


def test_learning_page_says_when_no_decision_in_the_window_has_ended(app: Flask) -> None:
    browser, _, _ = _signed_in(app)
    page = browser.get("/console/learning").get_data(as_text=True)
    assert 'id="window-empty"' in page and 'id="chart-window"' not in page
    assert re.search(r'id="window-since">decisions made since \d{4}-\d\d-\d\d \d\d:\d\d:00 UTC', page)
