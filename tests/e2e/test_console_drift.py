"""A drift alarm in the console: tripped by a shifted simulated stream, then cleared by steady traffic.

The real service (gunicorn and its learner, which keeps the rollups) serves the console;
the simulated shoppers are ranked by the same app code in this process on the same log,
with the time driven explicitly (drift windows are minutes long), and the drift monitor
runs with short windows. Chromium then shows what the log holds.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import BrowserContext, expect

from logs.rollup_queries import RollupReader
from policies.learning.drift import DriftOptions
from policies.learning.rewards import RewardRules
from service.app import create_app
from service.loop_chores import HealthChores
from tests.conftest import make_settings, rank_body
from tests.e2e.conftest import start_service, stop_service
from tests.e2e.console_browser import ADMIN_KEY, STOREFRONT_KEY, browser, screenshot, sign_in, wait_for

pytestmark = pytest.mark.e2e
__all__ = ["browser"]  # a fixture, used by name

T0 = 1_900_000_000.0  # after the real clock: the learner's own checks (now) never hide these
OPTIONS = DriftOptions(recent_minutes=2, reference_minutes=4, min_decisions=10, min_ended=10)


def simulate(app: Flask, clock: list[float], minutes: int, device: Callable[[int], str]) -> None:
    """Rank ten shoppers a minute for `minutes` minutes, their device chosen per minute."""
    client = app.test_client()
    headers = {"Authorization": f"Bearer {STOREFRONT_KEY}"}
    for minute in range(minutes):
        for _ in range(10):
            body = rank_body(context={"shopper": {"device": device(minute), "segment": "pro"}})
            assert client.post("/v1/rank", json=body, headers=headers).status_code == 200
            clock[0] += 6


def check_drift(app: Flask, clock: list[float]) -> None:
    """Wait until the service's learner has rolled up every decision, then run the drift checks."""
    store = app.extensions["xsell"].store
    newest = store.conn.execute("SELECT max(rowid) FROM decisions").fetchone()[0]
    wait_for(lambda: RollupReader(store).watermarks().decisions_rowid >= newest, "the learner's rollups")
    health = HealthChores(
        store, rules=RewardRules, window_seconds=lambda: 60.0, grace_seconds=0.0, drift_options=OPTIONS
    )
    health.check_drift()


def test_a_shifted_stream_raises_a_drift_alarm_in_the_console_and_steady_traffic_clears_it(
    tmp_path: Path, browser: BrowserContext
):
    service = start_service(tmp_path, XSELL_ADMIN_API_KEYS=ADMIN_KEY, XSELL_API_KEYS=STOREFRONT_KEY)
    clock = [T0]
    settings = make_settings(tmp_path, admin_api_keys=ADMIN_KEY, api_keys=STOREFRONT_KEY)
    assert settings.resolved_log_path == service.data_dir / "xsell.db"
    app = create_app(settings, clock=lambda: clock[0])
    try:
        # Five minutes of mobile shoppers, then two of desktop ones: the shopper namespace moved.
        simulate(app, clock, 7, lambda minute: "desktop" if minute >= 5 else "mobile")
        check_drift(app, clock)
        page = sign_in(browser, service.url)
        page.click("text=Drift")
        expect(page.locator("#drift-alarm")).to_contain_text("features shopper")
        expect(page.locator("tr[data-subject='features:shopper']")).to_have_class("drift-alarm")
        screenshot(page, "console-drift-alarm")

        # Six more minutes of desktop shoppers: recent and reference windows agree again.
        simulate(app, clock, 6, lambda minute: "desktop")
        check_drift(app, clock)
        page.reload()
        expect(page.locator("#drift-ok")).to_be_visible()
        assert page.locator("#drift-alarm").count() == 0
        expect(page.locator("tr[data-subject='features:shopper']")).to_have_class("drift-ok")
    finally:
        app.extensions["xsell"].store.close()
        stop_service(service)
