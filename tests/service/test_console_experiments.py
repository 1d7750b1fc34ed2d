"""The console's Experiments page over a real log: what an operator reads, and stop and ship.

Every figure on the page must be `ExperimentStore.results` as of the page's clock (the
injected one), at any moment, with the decisions still inside their window said apart.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from logs.experiment_store import ExperimentStore
from scripts.demo_store import load_demo
from scripts.devtools.learning_loop import Clock
from service.app import create_app
from service.console.experiments import verdict
from service.console.filters import percent
from tests.conftest import make_settings, rank_body
from tests.service.test_replay_exact import serve, train_on

ADMIN = {"Authorization": "Bearer admin-key"}
WINDOW = 60.0  # make_settings' reward window
HOLDOUT = [
    {"name": "bandit", "policy": "model", "share": 0.5},
    {"name": "holdout", "policy": "no-offer", "share": 0.5},
]


@pytest.fixture
def clock() -> Clock:
    return Clock(1_800_000_000.0)


@pytest.fixture
def shop(tmp_path: Path, clock: Clock) -> Iterator[Flask]:
    # a fixed server secret: the arms are the same on every run
    settings = make_settings(tmp_path, admin_api_keys="admin-key", shopper_id_secret="console-experiments")
    app = create_app(settings, clock=clock)
    load_demo(app.extensions["xsell"].catalog)
    yield app
    app.extensions["xsell"].store.close()


def signed_in(app: Flask) -> tuple[FlaskClient, str]:
    """A browser signed in to the console, and its CSRF token."""
    browser = app.test_client()
    assert browser.post("/console/signin", data={"key": "admin-key"}).status_code == 303
    token = re.search(r'name="csrf_token" value="([0-9a-f]+)"', browser.get("/console/experiments").text)
    assert token is not None
    return browser, token.group(1)


def start(app: Flask, arms: list[dict[str, Any]], experiment_id: str = "exp-1") -> None:
    answer = app.test_client().post(
        "/v1/experiments", headers=ADMIN, json={"id": experiment_id, "arms": arms}
    )
    assert answer.status_code == 201, answer.get_json()


def traffic(app: Flask, rounds: range) -> None:
    """Rank a shopper per round; a third click, a sixth buy, some dismiss."""
    client = app.test_client()
    for k in rounds:
        answer = client.post("/v1/rank", json=rank_body(shopper_id=f"shopper-{k}")).get_json()
        if not answer["chosen"]:
            continue
        feedback = f"/v1/events/{answer['event_id']}/feedback"
        if k % 3 == 0:
            client.post(feedback, json={"signal": "click"})
        if k % 6 == 0:
            client.post(feedback, json={"signal": "purchase", "value": 30.0})
        if k % 5 == 1:
            client.post(feedback, json={"signal": "dismiss"})


def table(html: str, table_id: str) -> dict[str, dict[str, Any]]:
    """Per row (data-arm): its metric cells' data values, and its other cells by class."""
    found = re.search(rf'<table id="{table_id}">(.*?)</table>', html, re.S)
    assert found, f"no table {table_id}"
    rows = {}
    for arm, row in re.findall(r'<tr data-arm="([^"]+)"[^>]*>(.*?)</tr>', found.group(1), re.S):
        cells: dict[str, Any] = {
            metric: {
                "estimate": float(e),
                "low": float(lo) if lo else None,
                "high": float(hi) if hi else None,
            }
            for metric, e, lo, hi in re.findall(
                r'data-metric="(\w+)" data-estimate="([^"]*)"\s+data-low="([^"]*)" data-high="([^"]*)"', row
            )
        }
        for name, text in re.findall(r'<td class="(?:num |verdict )?([\w-]+)[^"]*"[^>]*>([^<]*)<', row):
            cells.setdefault(name, text.strip())
        rows[arm] = cells
    return rows


def test_the_page_shows_the_stores_results_at_any_moment_and_what_is_not_counted_yet(
    shop: Flask, clock: Clock
) -> None:
    start(shop, HOLDOUT)
    traffic(shop, range(120))
    clock.now += WINDOW + 1  # these windows ended
    traffic(shop, range(120, 160))  # these are still open
    browser, _ = signed_in(shop)
    experiments = ExperimentStore(shop.extensions["xsell"].store)
    experiment = experiments.get("exp-1")

    def check() -> dict[str, Any]:
        html = browser.get("/console/experiments/exp-1").text
        results = experiments.results(experiment, clock.now)
        arms, lift = table(html, "arms"), table(html, "lift")
        assert set(arms) == {"bandit", "holdout"} and set(lift) == {"bandit"}  # no lift of the control
        for row in results["arms"]:
            shown = arms[row["arm"]]
            assert shown["decisions"] == f"{row['decisions']:,}"
            assert {m: shown[m] for m in row["metrics"]} == row["metrics"]  # exactly, not recomputed
            ctr = row["metrics"]["click_through"]
            assert f"[{percent(ctr['low'])}, {percent(ctr['high'])}]" in html
        bandit = next(r for r in results["arms"] if r["arm"] == "bandit")
        assert {m: lift["bandit"][m] for m in bandit["lift"]} == bandit["lift"]
        assert "Lift over holdout" in html and 'id="srm-ok"' in html and 'id="srm-alarm"' not in html
        return {"html": html, "results": results, "arms": arms}

    early = check()
    assert sum(r["decisions"] for r in early["results"]["arms"]) == 120
    assert re.search(r'id="experiment-pending">40<', early["html"])
    assert int(early["arms"]["bandit"]["pending"]) + int(early["arms"]["holdout"]["pending"]) == 40
    assert "still within their reward window and not counted yet" in early["html"]

    clock.now += WINDOW  # every window has ended: the same page counts them all
    late = check()
    assert sum(r["decisions"] for r in late["results"]["arms"]) == 160
    assert re.search(r'id="experiment-pending">0<', late["html"])


@pytest.mark.parametrize(
    ("low", "high", "kind"),
    [(0.01, 0.2, "higher"), (-0.3, -0.02, "lower"), (-0.1, 0.1, "not-yet"), (None, None, "no-data")],
)
def test_a_lift_is_called_only_when_its_interval_excludes_zero(
    low: float | None, high: float | None, kind: str
) -> None:
    assert verdict({"estimate": 0.0, "low": low, "high": high})["kind"] == kind


def test_a_clear_lift_says_its_interval_excludes_zero(shop: Flask, clock: Clock) -> None:
    start(shop, HOLDOUT)
    client = shop.test_client()
    for k in range(200):  # every shown offer is clicked; the holdout shows none
        answer = client.post("/v1/rank", json=rank_body(shopper_id=f"s{k}")).get_json()
        if answer["chosen"]:
            client.post(f"/v1/events/{answer['event_id']}/feedback", json={"signal": "click"})
    clock.now += WINDOW + 1
    browser, _ = signed_in(shop)
    html = browser.get("/console/experiments/exp-1").text
    assert table(html, "lift")["bandit"]["click_through"]["low"] > 0
    assert re.search(r'verdict-higher" data-metric="click_through">higher: the interval excludes zero', html)
    assert re.search(r'verdict-not-yet" data-metric="revenue_per_decision">not yet', html)


def test_a_rigged_split_raises_the_sample_ratio_alarm_and_a_fair_one_does_not(
    shop: Flask, clock: Clock
) -> None:
    start(shop, HOLDOUT)
    for k in range(300):
        shop.test_client().post("/v1/rank", json=rank_body(event_id=f"r{k}"))
    clock.now += WINDOW + 1
    browser, _ = signed_in(shop)
    fair = browser.get("/console/experiments/exp-1").text
    assert "Split as configured" in fair and "Sample-ratio mismatch" not in fair
    # the holdout lost most of its traffic (a cache in front of it, say): that shows in the log
    shop.extensions["xsell"].store.conn.execute(
        "DELETE FROM experiment_holdouts WHERE rowid IN (SELECT rowid FROM experiment_holdouts LIMIT 100)"
    )
    rigged = browser.get("/console/experiments/exp-1").text
    alarm = re.search(r'<p class="error" role="alert" id="srm-alarm">(.*?)</p>', rigged, re.S)
    assert alarm and "Sample-ratio mismatch" in alarm.group(1) and "Split as configured" not in rigged


def test_the_list_shows_experiments_newest_first_with_their_arms(shop: Flask, clock: Clock) -> None:
    start(shop, HOLDOUT)
    shop.test_client().post("/v1/experiments/exp-1/stop", headers=ADMIN, json={"reason": "enough"})
    clock.now += 3600
    popular = {"name": "popular", "policy": "most-popular", "share": 0.2}
    start(shop, [{"name": "bandit", "policy": "model", "share": 0.8}, popular], "exp-2")
    browser, _ = signed_in(shop)
    html = browser.get("/console/experiments").text
    assert 'href="/console/experiments" class="active"' in html  # in the navigation
    rows = re.findall(r'<tr data-experiment="([^"]+)" class="status-(\w+)">', html)
    assert rows == [("exp-2", "running"), ("exp-1", "stopped")]
    assert "popular: most-popular, 20.0%" in html and "holdout: no-offer, 50.0%" in html
    assert "2027-01-15 08:00:00 UTC" in html  # exp-1 started (1.8e9) and ended at once
    assert re.search(r'id="running">Running: <a href="/console/experiments/exp-2">', html)
    assert "stopped: enough" in html


def test_stop_goes_through_the_confirmation_with_the_csrf_token(shop: Flask) -> None:
    start(shop, HOLDOUT)
    browser, csrf = signed_in(shop)
    page = browser.get("/console/experiments/exp-1").text
    assert 'id="form-stop"' in page
    stop = "/console/experiments/exp-1/stop"
    for token in (None, "forged"):
        form = {"reason": "probe", "confirmed": "yes"} | ({"csrf_token": token} if token else {})
        assert browser.post(stop, data=form).status_code == 403
    confirm = browser.post(stop, data={"csrf_token": csrf, "reason": "bandit wins"})
    assert confirm.status_code == 200
    assert re.search(
        r'id="confirm-summary">stop experiment exp-1 \(exp-1, running since .*?\): ', confirm.text
    )
    experiments = ExperimentStore(shop.extensions["xsell"].store)
    assert experiments.get("exp-1").status == "running"  # nothing changes before the confirmation
    done = browser.post(stop, data={"csrf_token": csrf, "reason": "bandit wins", "confirmed": "yes"})
    assert done.status_code == 303 and done.headers["Location"].startswith(
        "/console/experiments/exp-1?notice="
    )
    assert experiments.get("exp-1").status == "stopped"
    shown = browser.get(done.headers["Location"]).text
    assert "done: stopped exp-1; reason: bandit wins" in shown and 'id="form-stop"' not in shown
    change = shop.test_client().get("/v1/models", headers=ADMIN).get_json()["changes"][0]
    assert change["action"] == "experiment-stop" and change["actor"].startswith("console:")
    assert change["reason"] == "experiment exp-1 stopped: bandit wins"
    answer = shop.test_client().post("/v1/rank", json=rank_body()).get_json()  # this worker knows at once
    assert shop.extensions["xsell"].store.find_decision(answer["event_id"]).experiment is None
    for confirmed in ({}, {"confirmed": "yes"}):  # refused before the confirmation, and at it
        again = browser.post(stop, data={"csrf_token": csrf, "reason": "twice"} | confirmed)
        assert again.status_code == 409 and "has already ended (stopped)" in again.text


def test_ship_offers_only_arms_with_a_model_and_activates_a_frozen_arms_version(shop: Flask) -> None:
    client = shop.test_client()
    registry = shop.extensions["xsell"].registry
    first = registry.active().version
    newer = train_on(shop, serve(client, "rank-single", range(100, 110)))
    arms = [
        {"name": "bandit", "policy": "model", "share": 0.25},
        {"name": "frozen", "policy": "frozen", "share": 0.25, "version": first},
        {"name": "popular", "policy": "most-popular", "share": 0.25},
        {"name": "holdout", "policy": "no-offer", "share": 0.25},
    ]
    start(shop, arms)
    browser, csrf = signed_in(shop)
    form = re.search(
        r'<form [^>]*id="form-ship">(.*?)</form>', browser.get("/console/experiments/exp-1").text, re.S
    )
    assert form and re.findall(r'<option value="([^"]+)"', form.group(1)) == ["bandit", "frozen"]
    ship = "/console/experiments/exp-1/ship"
    confirm = browser.post(ship, data={"csrf_token": csrf, "arm": "frozen", "reason": "frozen won"})
    assert "ship arm frozen (frozen) of experiment exp-1" in confirm.text
    assert f"activate {first} (serving {newer} now) for everyone" in confirm.text
    assert registry.active().version == newer
    done = browser.post(
        ship, data={"csrf_token": csrf, "arm": "frozen", "reason": "frozen won", "confirmed": "yes"}
    )
    assert done.status_code == 303
    assert registry.active().version == first
    assert ExperimentStore(shop.extensions["xsell"].store).get("exp-1").shipped_arm == "frozen"
    changes = client.get("/v1/models", headers=ADMIN).get_json()["changes"]
    assert [c["action"] for c in changes[:2]] == ["experiment-ship", "activate"]
    assert all(c["actor"].startswith("console:") for c in changes[:2])
    assert "shipped arm <strong>frozen</strong>" in browser.get(done.headers["Location"]).text


@pytest.mark.parametrize(
    ("form", "status", "message"),
    [
        ({"arm": "holdout", "reason": "r"}, 422, "a no-offer arm has no model to make the default"),
        ({"arm": "holdout", "reason": "r", "confirmed": "yes"}, 422, "no-offer arm has no model"),
        ({"arm": "nope", "reason": "r", "confirmed": "yes"}, 422, "has no arm &#39;nope&#39;"),
        ({"arm": "bandit", "reason": ""}, 422, "reason: say why"),
    ],
)
def test_a_refused_ship_is_an_error_message_and_changes_nothing(
    shop: Flask, form: dict[str, str], status: int, message: str
) -> None:
    start(shop, HOLDOUT)
    browser, csrf = signed_in(shop)
    refused = browser.post("/console/experiments/exp-1/ship", data=form | {"csrf_token": csrf})
    assert refused.status_code == status
    assert re.search(rf'id="error-message">[^<]*{message}', refused.text), refused.text
    assert ExperimentStore(shop.extensions["xsell"].store).get("exp-1").status == "running"


def test_an_unknown_experiment_is_a_404_page(shop: Flask) -> None:
    browser, csrf = signed_in(shop)
    assert browser.get("/console/experiments/nope").status_code == 404
    refused = browser.post("/console/experiments/nope/stop", data={"csrf_token": csrf, "reason": "r"})
    assert refused.status_code == 404 and "no experiment &#39;nope&#39;" in refused.text


def test_without_a_session_the_pages_send_to_sign_in_and_actions_are_refused(shop: Flask) -> None:
    start(shop, HOLDOUT)
    stranger = shop.test_client()
    for path in ("/console/experiments", "/console/experiments/exp-1"):
        answer = stranger.get(path)
        assert answer.status_code == 302 and answer.headers["Location"].startswith("/console/signin?next=")
    refused = stranger.post("/console/experiments/exp-1/stop", data={"reason": "r", "confirmed": "yes"})
    assert refused.status_code == 401
    assert ExperimentStore(shop.extensions["xsell"].store).get("exp-1").status == "running"
