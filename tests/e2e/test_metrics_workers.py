"""/metrics under real gunicorn: every worker's request figures are added up, and the
learner's rollups and drift checks reach the scrape."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import RunningService

pytestmark = pytest.mark.e2e

BODY = {"context": {"shopper": {"device": "mobile"}}, "actions": [{"id": "a"}, {"id": "b"}]}
RANK = (("error", ""), ("method", "POST"), ("route", "/v1/rank"), ("status", "200"))


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = requests.get(f"{url}/metrics", timeout=10).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def rank(url: str) -> str:
    response = requests.post(f"{url}/v1/rank", json=BODY, timeout=10)
    assert response.status_code == 200
    return response.headers["X-Xsell-Worker"]


def test_request_figures_add_up_over_every_worker(service: RunningService) -> None:
    workers: set[str] = set()
    sent = 0
    deadline = time.monotonic() + 120
    with ThreadPoolExecutor(max_workers=8) as pool:  # fresh connections reach both workers
        while len(workers) < 2 and time.monotonic() < deadline:
            workers |= set(pool.map(lambda _: rank(service.url), range(16)))
            sent += 16
    assert len(workers) == 2, f"only worker(s) {workers} answered"
    samples = scrape(service.url)
    # whichever worker answers the scrape, it counts what both workers served
    assert samples[("xsell_http_responses_total", RANK)] == sent
    latency = (("method", "POST"), ("route", "/v1/rank"))
    assert samples[("xsell_http_request_duration_seconds_count", latency)] == sent
    assert sum(v for (name, _), v in samples.items() if name == "xsell_decisions_total") == sent
    # the learner's chores: rollups (their age is a number) and drift checks reach the scrape
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        samples = scrape(service.url)
        if ("xsell_drift_alarm_any", ()) in samples and samples[("xsell_rollup_age_seconds", ())] < 60:
            break
        time.sleep(0.5)
    assert samples[("xsell_drift_alarm_any", ())] == 0
    assert samples[("xsell_rollup_age_seconds", ())] < 60
