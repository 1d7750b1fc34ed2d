"""The console's Experiments page in a real browser (Debian's headless Chromium) against real gunicorn.

The service (gunicorn workers and the learner) serves the console on the real clock;
the shoppers are ranked by the same app code in this process, on the same log, with the
time driven explicitly: a first batch two hours ago, whose reward windows (an hour) have
long ended, and a second batch now, whose windows stay open for the whole test. So the
page must count the first and say the second apart, whatever the machine's speed.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests
from flask import Flask
from playwright.sync_api import BrowserContext, expect

from logs.experiment_store import ExperimentStore
from service.app import create_app
from service.console.filters import percent
from tests.conftest import make_settings, rank_body
from tests.e2e.conftest import start_service, stop_service
from tests.e2e.console_browser import (
    ADMIN_KEY,
    STOREFRONT_KEY,
    browser,
    screenshot,
    sign_in,
    storefront,
    wait_for,
)

pytestmark = pytest.mark.e2e
__all__ = ["browser"]  # a fixture, used by name

WINDOW_SECONDS = 3600.0
EXPERIMENT = "e2e-holdout"
ARMS = [
    {"name": "bandit", "policy": "model", "share": 0.5},
    {"name": "holdout", "policy": "no-offer", "share": 0.5},
]
STOREFRONT = {"Authorization": f"Bearer {STOREFRONT_KEY}"}


def shoppers(app: Flask, clock: list[float], rounds: range) -> None:
    """Rank a shopper a second; every third shown offer is clicked."""
    client = app.test_client()
    for k in rounds:
        answer = client.post("/v1/rank", json=rank_body(shopper_id=f"shopper-{k}"), headers=STOREFRONT)
        assert answer.status_code == 200, answer.get_json()
        event_id, chosen = answer.get_json()["event_id"], answer.get_json()["chosen"]
        if chosen and k % 3 == 0:
            click = client.post(
                f"/v1/events/{event_id}/feedback", json={"signal": "click"}, headers=STOREFRONT
            )
            assert click.status_code in (200, 201, 202), click.get_json()
        clock[0] += 1.0


def test_an_operator_reads_a_running_experiment_and_stops_it(tmp_path: Path, browser: BrowserContext):
    service = start_service(
        tmp_path,
        XSELL_ADMIN_API_KEYS=ADMIN_KEY,
        XSELL_API_KEYS=STOREFRONT_KEY,
        XSELL_REWARD_WINDOW_SECONDS=str(WINDOW_SECONDS),
    )
    clock = [time.time() - 2 * WINDOW_SECONDS]
    settings = make_settings(
        tmp_path, admin_api_keys=ADMIN_KEY, api_keys=STOREFRONT_KEY, reward_window_seconds=WINDOW_SECONDS
    )
    assert settings.resolved_log_path == service.data_dir / "xsell.db"
    app = create_app(settings, clock=lambda: clock[0])
    try:
        admin = {"Authorization": f"Bearer {ADMIN_KEY}"}
        started = app.test_client().post(
            "/v1/experiments", headers=admin, json={"id": EXPERIMENT, "arms": ARMS}
        )
        assert started.status_code == 201, started.get_json()
        shoppers(app, clock, range(80))  # two hours ago: every window has ended
        clock[0] = time.time()
        shoppers(app, clock, range(80, 100))  # now: every window open for an hour
        experiments = ExperimentStore(app.extensions["xsell"].store)
        results = experiments.results(experiments.get(EXPERIMENT), time.time())
        assert sum(a["decisions"] for a in results["arms"]) == 80

        page = sign_in(browser, service.url)
        page.click("text=Experiments")
        row = page.locator(f"#experiments tr[data-experiment='{EXPERIMENT}']")
        expect(row.locator("td.status")).to_have_text("running")
        expect(row.locator("td.arms")).to_contain_text("bandit: model, 50.0%")
        expect(row.locator("td.arms")).to_contain_text("holdout: no-offer, 50.0%")
        expect(page.locator("#rules-none")).to_be_visible()
        screenshot(page, "console-experiments")

        row.locator("a").click()
        expect(page.locator("#experiment-status")).to_have_text("running")
        expect(page.locator("#experiment-counted")).to_have_text("80")
        expect(page.locator("#experiment-pending")).to_have_text("20")  # said apart, not counted
        expect(page.locator("#srm-ok")).to_contain_text("Split as configured")
        assert page.locator("#srm-alarm").count() == 0
        for arm in results["arms"]:
            shown = page.locator(f"#arms tr[data-arm='{arm['arm']}']")
            expect(shown.locator("td.decisions")).to_have_text(str(arm["decisions"]))
            ctr = arm["metrics"]["click_through"]
            cell = shown.locator("td[data-metric='click_through']")
            assert float(cell.get_attribute("data-low") or "nan") == ctr["low"]
            assert float(cell.get_attribute("data-high") or "nan") == ctr["high"]
            expect(cell).to_contain_text(
                f"{percent(ctr['estimate'])} [{percent(ctr['low'])}, {percent(ctr['high'])}]"
            )
        expect(page.locator("#lift tr[data-arm='bandit'] td.verdict").first).to_contain_text("interval")
        assert page.locator("#lift tr[data-arm='holdout']").count() == 0  # the control
        screenshot(page, "console-experiment")

        page.fill("#form-stop input[name=reason]", "seen enough")
        page.click("#form-stop button")
        expect(page.locator("#confirm-summary")).to_contain_text(f"stop experiment {EXPERIMENT}")
        page.click("#confirm")
        expect(page.locator(".notice")).to_contain_text(f"done: stopped {EXPERIMENT}; reason: seen enough")
        expect(page.locator("#experiment-status")).to_have_text("stopped")
        assert page.locator("#form-stop").count() == 0
        listed = requests.get(f"{service.url}/v1/experiments/{EXPERIMENT}", headers=admin, timeout=10).json()
        assert listed["status"] == "stopped" and listed["reason"] == "seen enough"

        # Every worker serves without the experiment within its poll: nobody is held out any more.
        def nobody_held_out() -> bool:
            answers = [storefront(service.url, "/v1/rank", rank_body(shopper_id=f"s{k}")) for k in range(12)]
            return all(a.json()["chosen"] for a in answers)

        wait_for(nobody_held_out, "every worker to stop the experiment")
    finally:
        app.extensions["xsell"].store.close()
        stop_service(service)
