"""The operator console in a real browser (Debian's headless Chromium) against real gunicorn.

One service per module gets simulated shoppers (offers, clicks, purchases, paced
shoppers); every figure the pages show is checked against the log with SQL. The tests
that change something (settings, rollback) run last.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime

import pytest
import requests
from playwright.sync_api import BrowserContext, expect

from tests.e2e.console_browser import (
    ADMIN_KEY,
    STOREFRONT_KEY,
    Traffic,
    browser,
    screenshot,
    sign_in,
    storefront,
    traffic,
    wait_for,
)

pytestmark = pytest.mark.e2e
__all__ = ["browser", "traffic"]  # fixtures used by name below


def figure(page, name: str) -> float | None:  # type: ignore[no-untyped-def]
    value = page.get_attribute(f"#fig-{name}", "data-value")
    assert value is not None, f"figure {name} is missing"
    return None if value == "" else float(value)


def test_console_refuses_without_a_key_and_with_a_storefront_key(traffic: Traffic, browser: BrowserContext):
    url = traffic.service.url
    # No cookie: every page sends the browser to the sign-in form, and a POST is refused.
    answer = requests.get(f"{url}/console/models", allow_redirects=False, timeout=10)
    assert answer.status_code == 302 and "/console/signin" in answer.headers["Location"]
    refused = requests.post(
        f"{url}/console/models/change", data={"action": "freeze", "reason": "x"}, timeout=10
    )
    assert refused.status_code == 401
    # An API key in a header does not open the console either: only its session cookie does.
    with_header = requests.get(
        f"{url}/console/", headers={"Authorization": f"Bearer {ADMIN_KEY}"}, allow_redirects=False, timeout=10
    )
    assert with_header.status_code == 302

    page = sign_in(browser, url, STOREFRONT_KEY)
    expect(page.locator("#signin-error")).to_contain_text("storefront key cannot sign in")
    assert not browser.cookies()
    page = sign_in(browser, url, "not-a-key")
    expect(page.locator("#signin-error")).to_contain_text("not an admin key")
    screenshot(page, "console-signin-refused")
    page.goto(f"{url}/console/settings")
    assert "/console/signin" in page.url
    assert not browser.cookies()


def test_sign_in_sets_a_strict_cookie_and_health_matches_the_log(traffic: Traffic, browser: BrowserContext):
    url = traffic.service.url
    fetched: list[str] = []
    browser.on("request", lambda request: fetched.append(request.url))
    page = sign_in(browser, url)
    assert page.url.rstrip("/").endswith("/console")
    (cookie,) = browser.cookies()
    assert cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"
    assert ADMIN_KEY not in cookie["value"]

    decisions = traffic.sql("SELECT count(*) FROM decisions")[0][0]
    answered = traffic.sql("SELECT count(DISTINCT event_id) FROM feedback WHERE on_time = 1")[0][0]
    feedback = traffic.sql("SELECT count(*) FROM feedback")[0][0]
    assert decisions > 0 and answered > 0
    # Shares come from the learner's rollups, which reach ended windows within seconds.
    reload_until(
        page, lambda: figure(page, "feedback_share") == pytest.approx(answered / decisions), "the share"
    )
    expect(page.locator("#chart-traffic")).to_have_attribute("data-drawn", "yes")
    # Per minute over what the last 60 min really span: 59 whole minutes and the current one's seconds.
    as_of = float(page.get_attribute("#fig-decisions_per_minute", "data-as-of") or "nan")
    span_minutes = 59 + (as_of % 60) / 60
    assert figure(page, "decisions_per_minute") == pytest.approx(decisions / span_minutes)
    assert figure(page, "feedback_per_minute") == pytest.approx(feedback / span_minutes)
    assert figure(page, "late_feedback") == 0
    assert figure(page, "learner_lag_decisions") == 0
    assert figure(page, "reward_delay_median_seconds") == 1.0  # every post within a second: first bucket
    greedy = 0
    for probabilities, choices in traffic.sql("SELECT probabilities, choices FROM decisions"):
        greedy += json.loads(choices)[0]["probability"] >= max(json.loads(probabilities)) - 1e-12
    assert figure(page, "exploration_share") == pytest.approx((decisions - greedy) / decisions)
    for name in ("decisions_per_minute", "feedback_share", "exploration_share"):
        unit = page.locator(f"#fig-{name} .unit").inner_text()
        assert "last 60 min" in unit, unit  # every figure names its unit and window
    assert "reward window ended" in page.locator("#fig-feedback_share .unit").inner_text()
    posts = page.locator("#delay-table tbody tr td.num").all_inner_texts()
    assert sum(int(v.replace(",", "")) for v in posts) == feedback
    clicks = traffic.sql("SELECT count(*) FROM feedback WHERE signal = 'click'")[0][0]
    expect(page.locator("#signals tr", has_text="click")).to_contain_text(str(clicks))
    screenshot(page, "console-health")
    # Works offline: the page, its script, styles and charting library all come from the service.
    assert any(u.endswith("/uPlot.iife.min.js") for u in fetched)
    assert all(u.startswith(url) for u in fetched), [u for u in fetched if not u.startswith(url)]
    page.click("text=Drift")
    # Fewer decisions than a drift check needs: the page says no verdict, never a false alarm.
    assert page.locator("#drift-alarm").count() == 0


def reload_until(page, condition, what: str, seconds: float = 60.0) -> None:  # type: ignore[no-untyped-def]
    """Reload `page` until `condition()` holds (the rollups run every few seconds)."""

    def check() -> bool:
        page.reload()
        return bool(condition())

    wait_for(check, what, seconds)


def test_is_it_learning_shows_served_reward_beside_uniform_and_most_popular(
    traffic: Traffic, browser: BrowserContext
):
    page = sign_in(browser, traffic.service.url)
    page.click("text=Is it learning?")
    expect(page.locator("#chart-learning")).to_have_attribute("data-drawn", "yes")
    rows = page.locator("#learning-totals tbody tr")
    names = rows.evaluate_all("rows => rows.map(r => r.dataset.name)")
    assert any(n.startswith("served by") for n in names)
    assert "uniform random (SNIPS)" in names and "most popular (SNIPS)" in names
    # The served rows together are the mean reward of every closed decision (click 1,
    # purchase 1 + 0.005 x 40 = 1.2, the maximum of an offer's signals; silence 0).
    served_n, served_sum = 0, 0.0
    for i in range(rows.count()):
        row = rows.nth(i)
        if row.get_attribute("data-name").startswith("served by"):
            n = int(row.locator("td").nth(1).inner_text().replace(",", ""))
            served_n += n
            served_sum += n * float(row.locator("td.mean").inner_text())
    rewards = traffic.sql(
        "SELECT d.event_id,"
        " max(CASE f.signal WHEN 'purchase' THEN 1 + 0.005 * f.value WHEN 'click' THEN 1 END)"
        " FROM decisions d LEFT JOIN feedback f ON f.event_id = d.event_id AND f.on_time = 1"
        " AND f.action_id = json_extract(d.choices, '$[0].action_id') GROUP BY d.event_id"
    )
    assert served_n == len(rewards)
    expected = sum(r or 0.0 for _, r in rewards) / len(rewards)
    assert served_sum / served_n == pytest.approx(expected, abs=5e-4)  # shown with 4 digits
    # The chart over the whole window comes from the learner's rollups: the same mean once they caught up.
    reload_until(page, lambda: figure(page, "mean_reward") == pytest.approx(expected), "the window's mean")
    expect(page.locator("#chart-window")).to_have_attribute("data-drawn", "yes")
    assert "reward window ended" in page.locator("#fig-mean_reward .unit").inner_text()
    screenshot(page, "console-learning")


def test_models_and_offers_pages_match_the_log(traffic: Traffic, browser: BrowserContext):
    page = sign_in(browser, traffic.service.url)
    page.click("text=Models")
    active = traffic.sql("SELECT version FROM models WHERE state = 'active'")[0][0]
    expect(page.locator("#active-version")).to_have_text(active)
    served = traffic.sql("SELECT model_version, count(*) FROM decisions GROUP BY 1")
    assert served

    def served_match() -> bool:
        for version, count in served:
            cell = page.locator(f"#versions tr[data-version='{version}'] td.served")
            if int(cell.inner_text().replace(",", "")) != count:
                return False
        return True

    reload_until(page, served_match, "decisions served per version equal to the log's")
    screenshot(page, "console-models")

    page.click("text=Offers")
    shown = dict(
        traffic.sql(
            "SELECT p.category, count(*) FROM decisions d, json_each(d.choices) c"
            " JOIN products p ON p.sku = json_extract(c.value, '$.action_id') GROUP BY 1"
        )
    )
    paced = traffic.sql("SELECT count(*) FROM pacing_log")[0][0]
    assert shown and paced > 0

    def offers_match() -> bool:
        for category, count in shown.items():
            cell = page.locator(f"#by-category tr[data-key='{category}'] td.shown")
            if cell.count() != 1 or int(cell.inner_text().replace(",", "")) != count:
                return False
        listed = page.locator("#pacing tbody td.num").all_inner_texts()
        return sum(int(v.replace(",", "")) for v in listed) == paced

    reload_until(page, offers_match, "offer figures equal to the log's")
    screenshot(page, "console-offers")


def test_event_inspector_explains_a_decision(traffic: Traffic, browser: BrowserContext):
    assert traffic.clicked
    event_id = traffic.clicked[0]
    answer = next(a for a in traffic.answers if a["event_id"] == event_id)
    page = sign_in(browser, traffic.service.url)
    page.click("text=Event inspector")
    page.fill("input[name=event_id]", event_id)
    page.click("#form-event button")
    expect(page.locator("#event-model")).to_have_text(answer["model_version"])
    candidates = traffic.sql("SELECT probabilities FROM decisions WHERE event_id = ?", event_id)[0][0]
    assert page.locator("#event-candidates tbody tr").count() == len(json.loads(candidates))
    first = answer["offers"][0]["sku"]
    chosen = page.locator("#event-choices tbody tr").first
    expect(chosen).to_contain_text(first)
    assert float(chosen.locator("td.reward").inner_text()) >= 1.0  # the click was learned
    expect(page.locator("#event-feedback")).to_contain_text("click")
    expect(page.locator(f"#event-candidates tr[data-action='{first}']")).to_contain_text("slot 1")
    screenshot(page, "console-event")
    page.fill("input[name=event_id]", "no-such-event")
    page.click("#form-event button")
    expect(page.locator("#event-error")).to_contain_text("no decision")


def test_actions_without_the_csrf_token_are_refused(traffic: Traffic, browser: BrowserContext):
    page = sign_in(browser, traffic.service.url)
    url = traffic.service.url
    for token in (None, "forged"):
        data = {"action": "freeze", "reason": "csrf probe", "confirmed": "yes"}
        if token:
            data["csrf_token"] = token
        answer = page.request.post(f"{url}/console/models/change", form=data)
        assert answer.status == 403
    models = requests.get(f"{url}/v1/models", headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=10)
    assert models.json()["learning_frozen"] is False
    assert traffic.sql("SELECT count(*) FROM model_changes WHERE reason = 'csrf probe'")[0][0] == 0


def test_evaluation_started_from_the_page_runs_and_shows_estimates(traffic: Traffic, browser: BrowserContext):
    page = sign_in(browser, traffic.service.url)
    page.click("text=Evaluations")
    first, last = traffic.sql("SELECT min(created_at), max(created_at) FROM decisions")[0]
    page.fill("input[name=start]", datetime.fromtimestamp(first - 60, UTC).strftime("%Y-%m-%dT%H:%M:%S"))
    page.fill("input[name=end]", datetime.fromtimestamp(last + 60, UTC).strftime("%Y-%m-%dT%H:%M:%S"))
    page.fill("textarea[name=policies]", "eps | --cb_explore_adf --epsilon 0.1")
    page.click("#form-evaluation button")
    expect(page.locator("#evaluation-status")).to_have_text("Succeeded", timeout=120_000)
    table = page.locator("#estimates tbody tr")
    expect(table).to_have_count(4)  # online, baseline, random, eps
    expect(page.locator("#estimates")).to_contain_text("eps")
    assert page.locator("#chart-estimates circle").count() == 4
    decisions = traffic.sql("SELECT count(*) FROM decisions")[0][0]
    assert int(table.first.locator("td").nth(3).inner_text().replace(",", "")) == decisions
    screenshot(page, "console-evaluation")


def test_live_setting_changed_from_the_page(traffic: Traffic, browser: BrowserContext):
    page = sign_in(browser, traffic.service.url)
    page.click("text=Settings")
    page.fill("input[name='value.default_reward']", "-0.05")
    page.click("#form-settings button[type=submit]")
    expect(page.locator(".notice")).to_contain_text("default_reward")
    expect(page.locator("tr[data-setting=default_reward] td.source")).to_have_text("live")
    config = requests.get(
        f"{traffic.service.url}/v1/config", headers={"Authorization": f"Bearer {ADMIN_KEY}"}, timeout=10
    ).json()
    assert config["settings"]["default_reward"] == {**config["settings"]["default_reward"], "value": -0.05}
    page.fill("input[name='value.default_reward']", "lots")  # not a number: nothing changes
    page.click("#form-settings button[type=submit]")
    expect(page.locator("#settings-errors")).to_contain_text("default_reward")
    page.check("input[name='reset.default_reward']")
    page.click("#form-settings button[type=submit]")
    expect(page.locator("tr[data-setting=default_reward] td.source")).not_to_have_text("live")


def test_rollback_from_the_page_changes_the_served_version(traffic: Traffic, browser: BrowserContext):
    url = traffic.service.url
    page = sign_in(browser, url)
    page.click("text=Models")
    before = page.locator("#active-version").inner_text()
    # The default target: the registry chooses, the confirmation names it, the change serves it.
    page.fill("#form-rollback input[name=reason]", "console test rollback")
    page.click("#form-rollback button")
    summary = page.locator("#confirm-summary").inner_text()
    found = re.match(rf"roll back from {before} to (v\d+) \((.+)\); reason: console test rollback", summary)
    assert found, summary
    target, why = found.groups()
    assert traffic.sql("SELECT events_learned FROM models WHERE version = ?", target)[0][0] > 0
    page.click("#confirm")
    expect(page.locator(".notice")).to_contain_text(f"rolled back to {target}")
    expect(page.locator("#active-version")).to_have_text(target)
    latest = page.locator("#history tbody tr").first
    expect(latest).to_contain_text("rollback")
    expect(latest).to_contain_text(f"console test rollback; {why}")  # as `xsell models rollback` records it
    expect(latest).to_contain_text(re.compile(r"console:[0-9a-f]{8}"))
    screenshot(page, "console-rollback")
    wait_for(lambda: all(_served(url) == target for _ in range(6)), f"every worker to serve {target}")

    # A named version: back to the one served before.
    page.select_option("#form-rollback select", before)
    page.fill("#form-rollback input[name=reason]", "undo the test rollback")
    page.click("#form-rollback button")
    expect(page.locator("#confirm-summary")).to_contain_text(f"roll back from {target} to {before}")
    page.click("#confirm")
    expect(page.locator("#active-version")).to_have_text(before)
    wait_for(lambda: all(_served(url) == before for _ in range(6)), f"every worker to serve {before}")
    body = {"cart": [{"sku": "camera-01", "qty": 1}], "stage": "cart", "device": "mobile", "max_offers": 1}
    assert storefront(url, "/v1/offers", body).json()["model_version"] == before
    changes = traffic.sql("SELECT action, version, actor FROM model_changes ORDER BY rowid DESC LIMIT 2")
    assert [(a, v) for a, v, _ in changes] == [("rollback", before), ("rollback", target)]
    assert all(actor.startswith("console:") for _, _, actor in changes)


def _served(url: str) -> str:
    return str(requests.get(f"{url}/readyz", timeout=10).json()["model_version"])
