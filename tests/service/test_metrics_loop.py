"""/metrics: request latency per route, errors by kind, loop health, drift (in one process)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

from policies.learning.drift import DriftOptions
from policies.learning.rewards import RewardRules
from service.app import create_app
from service.loop_chores import HealthChores
from tests.conftest import make_settings, rank_body

T0 = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(tmp_path: Path, clock: Clock) -> Iterator[Flask]:
    app = create_app(make_settings(tmp_path), clock=clock)
    yield app
    app.extensions["xsell"].store.close()


def scrape(app: Flask) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = app.test_client().get("/metrics")
    assert response.status_code == 200
    found = {}
    for family in text_string_to_metric_families(response.get_data(as_text=True)):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def chores(app: Flask, **options: object) -> HealthChores:
    store = app.extensions["xsell"].store
    return HealthChores(store, rules=RewardRules, window_seconds=lambda: 60.0, grace_seconds=0.0, **options)


def test_request_latency_is_a_histogram_per_route(app: Flask) -> None:
    client = app.test_client()
    before = scrape(app)
    for _ in range(3):
        assert client.post("/v1/rank", json=rank_body()).status_code == 200
    after = scrape(app)
    labels = {"route": "/v1/rank", "method": "POST"}
    count = "xsell_http_request_duration_seconds_count"
    assert value(after, count, **labels) - value(before, count, **labels) == 3
    inf = value(after, "xsell_http_request_duration_seconds_bucket", le="+Inf", **labels)
    assert inf == value(after, count, **labels)


def test_errors_are_counted_by_route_status_and_code(app: Flask) -> None:
    client = app.test_client()
    before = scrape(app)
    assert client.post("/v1/events/nope/feedback", json={"signal": "click"}).status_code == 404
    assert client.post("/v1/rank", json={"actions": []}).status_code == 422
    after = scrape(app)
    unmatched = {"code": "unknown_event"}
    assert (
        value(after, "xsell_feedback_unmatched_total", **unmatched)
        - value(before, "xsell_feedback_unmatched_total", **unmatched)
        == 1
    )
    bad = {"route": "/v1/rank", "method": "POST", "status": "422", "error": "validation_error"}
    responses = [k for k in after if k[0] == "xsell_http_responses_total" and ("status", "422") in k[1]]
    assert responses, "no 422 counted"
    assert sum(after[k] - before.get(k, 0.0) for k in responses) == 1
    assert bad["route"] in {dict(k[1])["route"] for k in responses}


def test_unmatched_feedback_is_one_sample_per_code_summed_over_the_routes(app: Flask) -> None:
    """Feedback and reward (and Personalizer's) all count toward one series per code."""
    client = app.test_client()
    assert client.post("/v1/events/nope/feedback", json={"signal": "click"}).status_code == 404
    assert client.post("/v1/events/nope/reward", json={"value": 1.0}).status_code == 404
    response = client.get("/metrics")
    assert response.status_code == 200
    samples = [
        sample
        for family in text_string_to_metric_families(response.get_data(as_text=True))
        for sample in family.samples
        if sample.name == "xsell_feedback_unmatched_total"
    ]
    codes = [sample.labels["code"] for sample in samples]
    assert sorted(codes) == ["unknown_action", "unknown_event"]  # each once, never per route
    event = next(sample for sample in samples if sample.labels["code"] == "unknown_event")
    assert event.value >= 2  # this process's figures: earlier tests may have added some


def test_decisions_feedback_share_and_lag_come_from_the_rollups(app: Flask, clock: Clock) -> None:
    client = app.test_client()
    ids = [client.post("/v1/rank", json=rank_body()).get_json()["event_id"] for _ in range(4)]
    clock.now += 1
    client.post(f"/v1/events/{ids[0]}/feedback", json={"signal": "click"})
    samples = scrape(app)  # nothing rolled up yet: counts come from the log past the watermark
    assert sum(v for (name, _), v in samples.items() if name == "xsell_decisions_total") == 4
    assert value(samples, "xsell_feedback_total", signal="click") == 1
    assert value(samples, "xsell_learner_lag_decisions") == 4
    clock.now += 61  # every window ended
    chores(app).roll()
    samples = scrape(app)
    assert sum(v for (name, _), v in samples.items() if name == "xsell_decisions_total") == 4
    assert value(samples, "xsell_feedback_share") == pytest.approx(0.25)
    assert clock.now % 60 == 2  # over the last hour: 59 whole minutes and the current one's 2 s
    assert value(samples, "xsell_decisions_per_minute") == pytest.approx(4 / (59 + 2 / 60))
    assert value(samples, "xsell_reward_delay_seconds_window", le="+Inf") == 1
    assert value(samples, "xsell_rollup_age_seconds") == pytest.approx(0.0)


def test_drift_scores_and_the_alarm_gauge(app: Flask, clock: Clock) -> None:
    client = app.test_client()
    options = DriftOptions(recent_minutes=2, reference_minutes=4, min_decisions=10, min_ended=10)
    health = chores(app, drift_options=options)
    for minute in range(7):
        device = "desktop" if minute >= 5 else "mobile"  # the last two minutes shift
        for _ in range(10):
            body = rank_body(context={"shopper": {"device": device, "segment": "pro"}})
            assert client.post("/v1/rank", json=body).status_code == 200
            clock.now += 6
    health.roll()
    health.check_drift()
    samples = scrape(app)
    assert value(samples, "xsell_drift_psi", namespace="shopper") > options.psi_alarm
    assert value(samples, "xsell_drift_alarm", kind="features", subject="shopper") == 2
    assert value(samples, "xsell_drift_alarm_any") == 2


def test_the_learner_keeps_the_rollups_as_a_chore(tmp_path: Path, clock: Clock) -> None:
    from scripts.learn import build_learner

    settings = make_settings(tmp_path)
    app = create_app(settings, clock=clock)
    client = app.test_client()
    for _ in range(3):
        assert client.post("/v1/rank", json=rank_body()).status_code == 200
    learner, store = build_learner(settings, clock=clock)
    learner.start()
    clock.now += 61
    learner.step()  # the first step runs every chore
    rolled = store.conn.execute("SELECT sum(decisions), sum(ended) FROM rollup_decisions").fetchone()
    assert tuple(rolled) == (3, 3)
    assert store.conn.execute("SELECT count(*) FROM drift_checks").fetchone()[0] > 0
    store.close()
    app.extensions["xsell"].store.close()


def test_no_offer_answers_are_counted_by_reason(tmp_path: Path) -> None:
    from service import loop_health
    from tests.conftest import demo_shop

    app = demo_shop(tmp_path)
    client = app.test_client()
    before = loop_health.offers(app.extensions["xsell"].store).no_offer.get("cart_full", 0.0)
    cart = [{"sku": f"unknown-{k}", "qty": 1} for k in range(8)]  # eight lines: a full cart
    answer = client.post("/v1/offers", json={"cart": cart}).get_json()
    assert answer["no_offer"] == "cart_full"
    assert (
        client.post("/v1/offers", json={"cart": cart[:1] + [{"sku": "camera-01", "qty": 1}]}).status_code
        == 200
    )
    view = loop_health.offers(app.extensions["xsell"].store)
    assert view.no_offer["cart_full"] - before == 1
    assert value(scrape(app), "xsell_no_offer_total", reason="cart_full") >= 1
    app.extensions["xsell"].store.close()
