"""Fixtures for the console's browser tests: a real service with traffic, and headless Chromium.

Chromium comes from Debian (``apt-get install chromium``, as ``make test`` does) and
Playwright drives it through ``executable_path``: no browser is downloaded. Each test
gets a fresh profile. Screenshots go to tests/e2e/artifacts/ (ignored by git).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import BrowserContext, Page, sync_playwright

from tests.e2e.conftest import RunningService, start_service, stop_service, wait_for

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps trying to reach Google's hosts.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ADMIN_KEY = "console-admin-key-0123456789"
STOREFRONT_KEY = "console-storefront-key-0123456789"
ARTIFACTS = Path(__file__).parent / "artifacts"
REWARD_WINDOW_SECONDS = 5.0  # no feedback post may be late on a loaded machine
CARTS = ("camera-01", "camera-02", "laptop-01", "phone-01", "camera-03", "laptop-02")


@dataclass
class Traffic:
    """A running service after simulated shoppers, and what they did."""

    service: RunningService
    answers: list[dict[str, Any]] = field(default_factory=list)
    clicked: list[str] = field(default_factory=list)

    def sql(self, query: str, *params: object) -> list[tuple[Any, ...]]:
        """Run a read-only query on the service's log."""
        conn = sqlite3.connect(f"file:{self.service.data_dir / 'xsell.db'}?mode=ro", uri=True)
        try:
            return conn.execute(query, params).fetchall()
        finally:
            conn.close()


def storefront(url: str, path: str, body: dict[str, Any]) -> requests.Response:
    """POST as the storefront does."""
    return requests.post(
        url + path, json=body, headers={"Authorization": f"Bearer {STOREFRONT_KEY}"}, timeout=10
    )


@pytest.fixture(scope="module")
def traffic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Traffic]:
    """Serve with admin and storefront keys; send offers and feedback; wait until all closed and learned."""
    running = start_service(
        tmp_path_factory.mktemp("console"),
        XSELL_ADMIN_API_KEYS=ADMIN_KEY,
        XSELL_API_KEYS=STOREFRONT_KEY,
        XSELL_REWARD_WINDOW_SECONDS=str(REWARD_WINDOW_SECONDS),
    )
    found = Traffic(running)
    try:
        for i in range(120):
            body: dict[str, Any] = {
                "cart": [{"sku": CARTS[i % len(CARTS)], "qty": 1}],
                "stage": "cart",
                "device": ("mobile", "desktop")[i % 2],
                "max_offers": 2,
            }
            if i % 4 == 0:
                body["shopper_id"] = f"shopper-{i % 8}"
            answer = storefront(running.url, "/v1/offers", body).json()
            found.answers.append(answer)
            if not answer["offers"]:
                continue
            first = answer["offers"][0]["sku"]
            if i % 3 == 0:
                feedback = {"signal": "click", "action_id": first}
                storefront(running.url, f"/v1/events/{answer['event_id']}/feedback", feedback)
                found.clicked.append(answer["event_id"])
            if i % 10 == 0:
                feedback = {"signal": "purchase", "value": 40.0, "action_id": first}
                storefront(running.url, f"/v1/events/{answer['event_id']}/feedback", feedback)
        # Every figure counts only decisions whose window ended, and the rollback test needs
        # trained versions: wait until every decision is closed and learned.
        wait_for(
            lambda: found.sql("SELECT count(*) FROM decisions WHERE closes_at > ?", time.time())[0][0] == 0,
            "every reward window to end",
        )
        wait_for(
            lambda: found.sql("SELECT count(*) FROM decisions WHERE learned_in IS NULL")[0][0] == 0,
            "the learner to learn every decision",
        )
        yield found
    finally:
        stop_service(running)


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[BrowserContext]:
    """A fresh headless Chromium profile (Debian's Chromium, driven by Playwright)."""
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"),
            executable_path=CHROMIUM,
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1360, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()


def sign_in(context: BrowserContext, url: str, key: str = ADMIN_KEY) -> Page:
    """Open the console and sign in with `key`; return the page."""
    page = context.pages[0] if context.pages else context.new_page()
    page.goto(f"{url}/console/")
    page.fill("input[name=key]", key)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    return page


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot as a test artifact; return its path."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
